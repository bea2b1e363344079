package analyze_test

import (
	"os"
	"time"

	"proctrail/analyze"
)

func ExampleWriteJSON() {
	t0 := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	ms := int64(time.Millisecond)
	m := &analyze.Model{
		Capture: analyze.Capture{
			Files: []string{"trace.zst"}, Host: "web1", Kernel: "6.1.0",
			Start: t0, End: t0 + 50*ms,
			ConnectorMessages: 3, AuditMessages: 12, AuditEvents: 3, ProcfsRecords: 1,
		},
		Processes: []*analyze.Process{{
			PID: 4242, PPID: 4200, Start: t0 + ms, End: t0 + 9*ms,
			Exited: true, ExitCode: 0, UID: 1000,
			Comm: "cat", Exe: "/usr/bin/cat", Argv: []string{"cat", "notes.txt"}, Cwd: "/home/ann",
			Execs:   []analyze.Exec{{Time: t0 + 2*ms, Exe: "/usr/bin/cat", Argv: []string{"cat", "notes.txt"}, Cwd: "/home/ann"}},
			Threads: []analyze.Thread{{TID: 4242, Start: t0 + ms, End: t0 + 9*ms}},
			Files:   []analyze.File{{Path: "/home/ann/notes.txt", Op: "open", Mode: "r", Open: t0 + 3*ms, Close: t0 + 8*ms}},
		}},
	}
	if err := analyze.WriteJSON(os.Stdout, m); err != nil {
		panic(err)
	}
	// Output:
	// {
	//   "schema": 1,
	//   "capture": {
	//     "files": [
	//       "trace.zst"
	//     ],
	//     "host": "web1",
	//     "kernel": "6.1.0",
	//     "start": "2024-05-01T12:00:00.000000000Z",
	//     "end": "2024-05-01T12:00:00.050000000Z",
	//     "sources": {
	//       "connector": {
	//         "messages": 3,
	//         "lost": 0
	//       },
	//       "audit": {
	//         "messages": 12,
	//         "events": 3,
	//         "lost": 0,
	//         "gaps": 0
	//       },
	//       "procfs": {
	//         "records": 1
	//       }
	//     },
	//     "unreadable_bytes": 0,
	//     "skipped_lines": 0
	//   },
	//   "containers": [],
	//   "processes": [
	//     {
	//       "pid": 4242,
	//       "ppid": 4200,
	//       "start": "2024-05-01T12:00:00.001000000Z",
	//       "end": "2024-05-01T12:00:00.009000000Z",
	//       "exit_code": 0,
	//       "signal": null,
	//       "uid": 1000,
	//       "comm": "cat",
	//       "exe": "/usr/bin/cat",
	//       "argv": [
	//         "cat",
	//         "notes.txt"
	//       ],
	//       "cwd": "/home/ann",
	//       "before_capture": false,
	//       "execs": [
	//         {
	//           "time": "2024-05-01T12:00:00.002000000Z",
	//           "exe": "/usr/bin/cat",
	//           "argv": [
	//             "cat",
	//             "notes.txt"
	//           ],
	//           "cwd": "/home/ann"
	//         }
	//       ],
	//       "threads": [
	//         {
	//           "tid": 4242,
	//           "start": "2024-05-01T12:00:00.001000000Z",
	//           "end": "2024-05-01T12:00:00.009000000Z"
	//         }
	//       ],
	//       "files": [
	//         {
	//           "path": "/home/ann/notes.txt",
	//           "op": "open",
	//           "mode": "r",
	//           "open": "2024-05-01T12:00:00.003000000Z",
	//           "close": "2024-05-01T12:00:00.008000000Z"
	//         }
	//       ],
	//       "container": null,
	//       "children": []
	//     }
	//   ]
	// }
}
