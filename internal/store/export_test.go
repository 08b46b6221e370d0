package store

import "context"

// ExecSQLiteForTest runs raw SQL on a SQLite store's writer, for tests
// outside the package that must set up what the API cannot.
func ExecSQLiteForTest(ctx context.Context, s *SQLite, query string, args ...any) error {
	_, err := s.w.ExecContext(ctx, query, args...)
	return err
}
