package replay

import (
	"testing"

	"github.com/elastic/go-libaudit/v2/auparse"

	"proctrail/formats"
)

func TestMessageNetlinkType(t *testing.T) {
	record := auditMsg(uint16(auparse.AUDIT_SYSCALL), "audit(1.002:3): arch=c000003e", false)
	ack := auditMsg(nlmsgError, "", false)
	tests := []struct {
		name   string
		source formats.Source
		raw    []byte
		want   uint16
		wantOK bool
	}{
		{"audit record", formats.SourceAudit, record, uint16(auparse.AUDIT_SYSCALL), true},
		{"netlink ack", formats.SourceAudit, ack, nlmsgError, true},
		{"header cut after the type", formats.SourceAudit, record[:6], uint16(auparse.AUDIT_SYSCALL), true},
		{"header cut in the type", formats.SourceAudit, record[:5], 0, false},
		{"connector", formats.SourceConnector, procMsg(0, 0, ts), nlmsgDone, true},
		{"procfs record", formats.SourceProcfs, record, 0, false},
		{"no Raw", formats.SourceAudit, nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := Message{Source: tt.source, Raw: tt.raw}
			got, ok := m.NetlinkType()
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("NetlinkType() = %d, %v; want %d, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
