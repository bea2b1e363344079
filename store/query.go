package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"
)

// Query runs one SQL statement in a read-only transaction: a statement
// that writes fails. It calls cols with the result's column names, then
// row for each row, with values of type nil (NULL), int64, float64, bool,
// string, []byte (bytes that are not text) or time.Time (UTC). Text
// stored in the escaped form of strings that are not UTF-8 (see the
// package documentation) comes back as the bytes it stands for. row's
// slice is reused for the next row.
func (db *DB) Query(ctx context.Context, q string, cols func([]string) error, row func([]any) error) error {
	err := db.readTx(ctx, func(tx sqlTx) error {
		if c, ok := tx.(*sql.Conn); ok {
			// SQLite: a statement that would write fails, rather than
			// being rolled back unseen.
			if _, err := c.ExecContext(ctx, "PRAGMA query_only = 1"); err != nil {
				return err
			}
			defer c.ExecContext(context.WithoutCancel(ctx), "PRAGMA query_only = "+boolPragma(db.ro))
		}
		rs, err := tx.QueryContext(ctx, q)
		if err != nil {
			return err
		}
		defer rs.Close()
		names, err := rs.Columns()
		if err != nil {
			return err
		}
		// SQLite holds booleans as 0 and 1: the declared type says which.
		boolCol := make([]bool, len(names))
		if types, err := rs.ColumnTypes(); err == nil {
			for i, t := range types {
				boolCol[i] = strings.EqualFold(t.DatabaseTypeName(), "boolean")
			}
		}
		if err := cols(names); err != nil {
			return err
		}
		vals := make([]any, len(names))
		ptrs := make([]any, len(names))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		for rs.Next() {
			if err := rs.Scan(ptrs...); err != nil {
				return err
			}
			for i, v := range vals {
				vals[i] = normalize(v)
				if n, ok := vals[i].(int64); ok && boolCol[i] {
					vals[i] = n != 0
				}
			}
			if err := row(vals); err != nil {
				return err
			}
		}
		return rs.Err()
	})
	if err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

func boolPragma(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// normalize turns a driver's value into one of Query's types.
func normalize(v any) any {
	switch t := v.(type) {
	case nil, int64, float64, bool:
		return t
	case string:
		return decodeText(t)
	case []byte:
		if utf8.Valid(t) {
			return decodeText(string(t))
		}
		return append([]byte(nil), t...)
	case time.Time:
		return t.UTC()
	case int32:
		return int64(t)
	case int:
		return int64(t)
	case float32:
		return float64(t)
	}
	return fmt.Sprint(v)
}
