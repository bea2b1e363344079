package replay

import (
	"reflect"
	"testing"

	"proctrail/formats"
)

// TestInPlaceFields guards the records written field by field (see
// decodeAuditShared and formats.Reader.ReadRecord): a field added to
// either type must be set there too, or a reused record keeps the value
// of the one before.
func TestInPlaceFields(t *testing.T) {
	for _, tc := range []struct {
		typ  reflect.Type
		want []string
	}{
		{reflect.TypeFor[AuditRecord](), []string{"Type", "Serial", "Time", "Node", "Text", "body"}},
		{reflect.TypeFor[formats.Record](), []string{"Source", "Time", "Data"}},
	} {
		var got []string
		for f := range tc.typ.Fields() {
			got = append(got, f.Name)
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s has the fields %v, where the code that writes it in place sets %v", tc.typ, got, tc.want)
		}
	}
}
