package postgres

import (
	"database/sql"
	"testing"

	"github.com/portcullis-dev/portcullis/internal/testsupport"
)

// startServer is testsupport's real PostgreSQL server.
func startServer(t *testing.T) *server { return &server{testsupport.NewPostgres(t)} }

type server struct{ *testsupport.Postgres }

func (s *server) empty(t *testing.T) string { return s.Empty(t) }

func (s *server) dsn(db string) string { return s.DSN(db) }

func (s *server) raw(t *testing.T, dsn string) *sql.DB { return s.Raw(t, dsn) }
