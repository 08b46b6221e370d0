package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/nsguard/nsguard/registry"
)

func init() {
	commands = append(commands, func(g *globals) *cobra.Command {
		var output string
		cmd := &cobra.Command{
			Use:   "contacts DOMAIN",
			Short: "Print the emergency contact sheet: registrar, registry operator, our own contacts",
			Long: `Builds the sheet the on-call needs when a domain is in trouble at the registry:
the sponsoring registrar and its abuse desk (from RDAP/WHOIS), the TLD's registry
operator with its administrative and technical contacts (from IANA's WHOIS,
registry.iana_whois, cached for a week), and the contacts configured under
contacts: (icann, registrar_account_manager, legal, and any others).

Whatever could not be found is listed as missing. Exit 0 when the sheet is
complete, 1 when pieces are missing, 3 on a bad domain or config.`,
			Example: `  nsguard contacts shop-example.com
  nsguard contacts shop-example.com -o markdown > shop-example.com-contacts.md`,
			Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				switch output {
				case "table", "text", "json", "markdown", "md":
				default:
					return withCode(exitUsage, fmt.Errorf("unknown output %q (want table, json or markdown)", output))
				}
				cfg, err := g.loadConfig()
				if err != nil {
					return err
				}
				client, err := registry.New(cfg, registry.Options{Logger: g.logger(!g.isTTY)})
				if err != nil {
					return withCode(exitUsage, err)
				}
				sheet, err := client.Contacts(cmd.Context(), args[0])
				if err != nil {
					// An invalid domain or an interrupted run: nothing to show.
					return withCode(exitUsage, err)
				}
				if err := writeContactSheet(g.stdout, sheet, output); err != nil {
					return err
				}
				if !sheet.Complete() {
					return withCode(exitWarning, nil)
				}
				return nil
			},
		}
		cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table, json or markdown")
		return cmd
	})
}

func writeContactSheet(w io.Writer, s *registry.ContactSheet, output string) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	case "markdown", "md":
		_, err := io.WriteString(w, s.Markdown())
		return err
	}
	_, err := io.WriteString(w, s.Text())
	return err
}
