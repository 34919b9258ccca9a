package sqlstore

import (
	"strconv"
	"strings"
)

// Dialect is what differs between the SQL databases a Store runs on. The
// SQL itself is written once, with "?" placeholders, in the subset that
// SQLite 3.35+ and PostgreSQL 12+ share (ON CONFLICT, RETURNING).
type Dialect struct {
	// Name names the database in errors ("sqlite", "postgres").
	Name string
	// Dollar numbers placeholders $1, $2, … (PostgreSQL) instead of "?".
	Dollar bool
	// IDColumn is the definition of an auto-increment BIGINT primary key.
	IDColumn string
	// Greatest and Least are the two-argument max and min functions.
	Greatest, Least string
	// Lateral says the database runs CROSS JOIN LATERAL (PostgreSQL): a
	// page's matching packages are then read through a fenced per-SBOM
	// subquery, an order the planner cannot turn around when it guesses
	// a common package rare. SQLite has no LATERAL; its CROSS JOIN
	// already fixes the join order.
	Lateral bool
	// MigrationLock, when set, is run first in each migration transaction
	// to serialise migrations between processes (SQLite needs none: its
	// write transactions are already exclusive).
	MigrationLock string
}

// Rebind turns "?" placeholders into the dialect's. Queries here hold no
// "?" inside string literals.
func (d Dialect) Rebind(q string) string {
	if !d.Dollar {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// placeholders returns "(?, ?, …), (…)" for rows rows of cols columns.
func placeholders(rows, cols int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return strings.TrimSuffix(strings.Repeat(one+", ", rows), ", ")
}
