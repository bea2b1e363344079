// Package report renders an analyze model as one self-contained HTML page
// that an analyst opens offline in a browser.
//
// The page is a single file: the stylesheet, the script and the model
// (the schema 1 JSON document of the analyze package, embedded once as
// text, the reads of busy processes folded as below) are all inline, and a Content-Security-Policy forbids every fetch,
// so the report works from file://, can be mailed around, and makes no
// network request of any kind. Every string of the model reaches the page
// as text, never as markup: a process named `<img src=x onerror=alert(1)>`
// shows as those characters and runs nothing. The inline script is allowed
// by its hash, so even markup that did get injected could not run an event
// handler.
//
// The page shows the capture's header (host, kernel, time span, message
// counts per source and a banner when any source lost messages), the
// process forest grouped by container as a collapsible tree, a search box,
// a detail panel for the selected process (its execs, fileless ones
// flagged, threads, the signals it sent with links to their targets, and
// its files with their details, set-uid and set-gid flagged), a Changes
// view of the model's "changes" (by directory, each change linked to the
// process that made it, rendered when first opened) and a timeline of
// process lifetimes. Rows are built only when their parent is expanded, as one flat
// list indented by depth (so a fork chain thousands deep lays out like any
// list), and the timeline draws on a canvas only the lanes in view: a
// capture of 10,000 processes opens in well under a second.
//
// A process with more than [FoldReads] reads (successful opens for
// reading that are not part of a search), or a file list of more than
// 4 MiB, shows its reads summed up by
// directory (count, first and last time) under its Files table, which
// keeps every other access one by one: writes, creations, deletions,
// renames, changes, failures, execs and searches. A click on a directory
// lists the files read there, and a button shows the process's whole
// list in order. The full lists are in the page too, gzip-compressed and
// base64-encoded in a script element of type text/plain, and the page
// decompresses them with DecompressionStream the first time they are
// needed: a directory opened, a full list asked for, or a search, which
// looks at every file read. So a capture of 50,000 reads by one mandb
// makes a page of about a megabyte that renders at once.
//
// The search box takes words that must all match, case-insensitively, in
// the command, argv, exe, cwd, file paths or container id of a process, or
// equal its pid; a word may be narrowed with pid:, ppid:, comm:, argv:,
// exe:, path: or ct:. Matching processes show with their ancestors.
//
// Stable hooks for tests and scripts: each process row has class "row" and
// attributes data-pid, data-depth and data-idx (the process's index in a
// depth-first walk of the model); each container group has class "group"
// and data-container (empty for the host). The search box is #search and
// its match count #search-count, whose data-query is the query the page has
// applied (typing applies each prefix in turn; no data-query without a
// search). The detail panel is #detail (with data-pid once a process is
// selected), the timeline #timeline, the loss banner #loss-banner, the
// buttons #expand-all and #collapse-all. The Changes view is
// #changes-panel (data-ready="1" once rendered), opened by
// #changes-toggle (hidden when there are no changes) and closed by
// #changes-close; each directory is a .ch-dir with data-dir, each change
// a row with data-op, class "gone" when removed later. The root element
// gets data-ready="1" and data-render-ms once the first render is done,
// and window.proctrail has count, indexOfPid, select, search,
// showChanges, barPoint, loadFolded (a promise of the number of folded
// lists, once decompressed) and timings. For a process whose reads are
// folded, the Files table is in #files-section (data-full="1" once it
// holds the whole list), the button #files-all shows the whole list,
// each directory of reads is a tr.rd-dir with data-dir and data-count,
// and a directory opened is followed by a tr.rd-list with data-dir
// (data-ready="1" once filled) whose files are tr.rd-file rows.
package report
