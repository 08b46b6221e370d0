package store

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// mapErr turns driver errors callers branch on into the package sentinels,
// keeping the driver's text for the operator. Both backends map alike: a
// broken constraint (unique, foreign key, not null) is ErrConflict, a
// writer that waited too long or a transaction the database aborted to
// break a deadlock is ErrBusy.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		// Both in the chain: callers branch on the sentinel, Classify
		// reads the driver's code.
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_CONSTRAINT:
			return fmt.Errorf("%w: %w", ErrConflict, se)
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
			return fmt.Errorf("%w: %w", ErrBusy, se)
		}
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case len(pe.Code) == 5 && pe.Code[:2] == "23": // integrity_constraint_violation
			return fmt.Errorf("%w: %w", ErrConflict, pe)
		case pe.Code == "40001", pe.Code == "40P01", pe.Code == "55P03": // serialization_failure, deadlock_detected, lock_not_available
			return fmt.Errorf("%w: %w", ErrBusy, pe)
		}
	}
	return err
}
