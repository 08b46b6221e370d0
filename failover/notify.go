package failover

import (
	"context"
	"fmt"
	"text/template"

	"github.com/nsguard/nsguard/config"
	"github.com/nsguard/nsguard/finding"
	"github.com/nsguard/nsguard/notify"
)

// notify: a message of the playbook's own in the run's Slack thread (and,
// when the step names a channel, in that channel too), templated like a
// webhook body.

type notifyPlan struct{ msg *template.Template }

func (pl *planner) planNotify(sp *StepPlan, n *config.NotifyStep) error {
	t, err := parseTemplate("message", n.Message)
	if err != nil {
		return err
	}
	text, err := render(t, pl.data("<run id>"))
	if err != nil {
		return err
	}
	sp.note = &notifyPlan{msg: t}
	sp.Summary = fmt.Sprintf("post to the run's Slack thread: %q", snippet(text, 200))
	if n.Channel != "" {
		sp.Summary += " (and to " + n.Channel + ")"
	}
	return nil
}

func (e *Engine) execNotify(ctx context.Context, rc *runCtx, sp *StepPlan) (request, response string, err error) {
	text, err := render(sp.note.msg, rc.data)
	if err != nil {
		return "", "", err
	}
	request = "message: " + snippet(text, 300)
	msgs := []*notify.Message{rc.message(finding.Info, fmt.Sprintf("Step %d/%d · %s", sp.Index, len(rc.plan.Steps), sp.Name), text)}
	if ch := sp.step.Notify.Channel; ch != "" && ch != rc.channel {
		m := rc.message(finding.Info, fmt.Sprintf("Failover %s · run %d", rc.plan.Playbook, rc.runID), text)
		m.ThreadKey, m.Channel = "", ch
		msgs = append(msgs, m)
	}
	if err := e.enqueue(ctx, msgs...); err != nil {
		return request, "", err
	}
	if len(msgs) > 1 {
		return request, "enqueued for the run's thread and " + sp.step.Notify.Channel, nil
	}
	return request, "enqueued for the run's thread", nil
}
