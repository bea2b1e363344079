// proctrail report page. Every string of the model is inserted with
// textContent or createTextNode, never as markup. Rows of the tree are built
// lazily, when their parent is first expanded; the timeline draws on a
// canvas only the lanes that are in view. Nothing is O(n²) in processes.
(function () {
  'use strict';

  var timings = { script: performance.now() };
  var M;
  try {
    M = JSON.parse(document.getElementById('model').textContent);
  } catch (e) {
    fatal('The embedded model is not valid JSON: ' + e.message);
    return;
  }
  if (!M || typeof M !== 'object') M = {};
  timings.parsed = performance.now();

  // ---- helpers ------------------------------------------------------------

  function $(id) { return document.getElementById(id); }
  function str(x) { return typeof x === 'string' ? x : (x === null || x === undefined ? '' : String(x)); }
  function arr(x) { return Array.isArray(x) ? x : []; }
  function num(x) { return typeof x === 'number' && isFinite(x) ? x : null; }
  function obj(x) { return x && typeof x === 'object' && !Array.isArray(x) ? x : {}; }

  // el makes an element with a class and a text child; the text is never
  // parsed as markup.
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null && text !== '') e.textContent = text;
    return e;
  }

  function fatal(msg) {
    var d = document.createElement('div');
    d.className = 'banner';
    d.textContent = msg;
    document.body.insertBefore(d, document.body.firstChild);
  }

  // vis makes control characters, bidirectional overrides and other
  // invisible code points visible as escapes, so a name cannot hide or
  // reorder what it shows (a trojan "exe\u202egnp.sh").
  var INVIS = /[\u0000-\u001f\u007f-\u009f\u00ad\u061c\u180e\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb]/g;
  var ESC = { '\n': '\\n', '\t': '\\t', '\r': '\\r' };
  function vis(s) {
    s = str(s);
    return s.replace(INVIS, function (c) {
      return ESC[c] || '\\u' + ('000' + c.charCodeAt(0).toString(16)).slice(-4);
    });
  }
  function shellWord(a) {
    a = vis(a);
    if (a === '') return "''";
    return /^[A-Za-z0-9_@%+=:,.\/-]+$/.test(a) ? a : "'" + a.replace(/'/g, "'\\''") + "'";
  }
  function argvLine(argv) { return arr(argv).map(shellWord).join(' '); }

  // Times are RFC 3339 with up to nine fractional digits. They are kept as
  // nanoseconds relative to BASE seconds so that doubles stay exact.
  var TRE = /^(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?([Zz]|[+-]\d\d:?\d\d)$/;
  var BASE = null;
  function tsec(s) {
    var m = TRE.exec(str(s));
    if (!m) return null;
    var sec = Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) / 1000;
    if (m[8] !== 'Z' && m[8] !== 'z') {
      var off = m[8].replace(':', '');
      var mins = +off.slice(1, 3) * 60 + +off.slice(3, 5);
      sec -= (off[0] === '-' ? -1 : 1) * mins * 60;
    }
    var ns = m[7] ? +(m[7] + '000000000').slice(0, 9) : 0;
    return [sec, ns];
  }
  function T(s) {
    var p = tsec(s);
    if (!p) return null;
    if (BASE === null) BASE = p[0];
    return (p[0] - BASE) * 1e9 + p[1];
  }
  function absTime(s) {
    var m = TRE.exec(str(s));
    if (!m) return vis(s);
    return m[1] + '-' + m[2] + '-' + m[3] + ' ' + m[4] + ':' + m[5] + ':' + m[6] +
      (m[7] ? '.' + m[7] : '') + (m[8] === 'Z' || m[8] === 'z' ? '' : ' ' + m[8]);
  }
  function dur(ns) {
    if (ns === null || ns === undefined || !isFinite(ns)) return '';
    if (ns < 0) return '-' + dur(-ns);
    if (ns < 1e3) return Math.round(ns) + ' ns';
    if (ns < 1e6) return (ns / 1e3).toPrecision(3) + ' µs';
    if (ns < 1e9) return (ns / 1e6).toPrecision(3) + ' ms';
    var s = ns / 1e9;
    if (s < 60) return s.toPrecision(3) + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + 'm ' + ('0' + Math.floor(s - m * 60)).slice(-2) + 's';
    var h = Math.floor(m / 60);
    if (h < 48) return h + 'h ' + ('0' + (m - h * 60)).slice(-2) + 'm';
    return Math.floor(h / 24) + 'd ' + (h % 24) + 'h';
  }
  function rel(t) {
    if (t === null) return '';
    return (t - T0 >= 0 ? '+' : '−') + dur(Math.abs(t - T0));
  }
  function fmtInt(n) { n = num(n); return n === null ? '–' : n.toLocaleString('en-US'); }

  var SIG = ['', 'SIGHUP', 'SIGINT', 'SIGQUIT', 'SIGILL', 'SIGTRAP', 'SIGABRT', 'SIGBUS', 'SIGFPE',
    'SIGKILL', 'SIGUSR1', 'SIGSEGV', 'SIGUSR2', 'SIGPIPE', 'SIGALRM', 'SIGTERM', 'SIGSTKFLT',
    'SIGCHLD', 'SIGCONT', 'SIGSTOP', 'SIGTSTP', 'SIGTTIN', 'SIGTTOU', 'SIGURG', 'SIGXCPU',
    'SIGXFSZ', 'SIGVTALRM', 'SIGPROF', 'SIGWINCH', 'SIGIO', 'SIGPWR', 'SIGSYS'];
  function sigName(n) { return SIG[n] || ('signal ' + n); }

  // ---- the model, flattened -----------------------------------------------

  var cap = obj(M.capture);
  var procs = [];      // the process objects, depth-first, parents first
  var parent = [];     // index of the parent, -1 for a root
  var kids = [];       // indices of the children, in model order
  (function flatten() {
    var roots = arr(M.processes);
    var stack = [];
    for (var i = roots.length - 1; i >= 0; i--) stack.push(roots[i], -1);
    while (stack.length) {
      var par = stack.pop(), p = obj(stack.pop());
      var idx = procs.length;
      procs.push(p); parent.push(par); kids.push([]);
      if (par >= 0) kids[par].push(idx);
      var ch = arr(p.children);
      for (var j = ch.length - 1; j >= 0; j--) stack.push(ch[j], idx);
    }
  })();
  var N = procs.length;

  // ---- folded reads ----------------------------------------------------------
  //
  // A process with many reads comes with its reads summed up by directory
  // ("read_dirs") and "files_folded", the index of its whole file list in
  // the gzip-compressed, base64 list #files-folded. That list is
  // decompressed once, when first needed: a directory opened, the full
  // list asked for, or a search.
  var anyFolded = false;
  for (var fi = 0; fi < N && !anyFolded; fi++) if (isFolded(procs[fi])) anyFolded = true;
  var folded = null, foldedP = null;
  function isFolded(p) { return num(p.files_folded) !== null && Array.isArray(p.read_dirs); }
  function loadFolded() {
    if (foldedP) return foldedP;
    foldedP = new Promise(function (resolve) {
      var src = $('files-folded');
      if (!src) { resolve([]); return; }
      var bin = atob(src.textContent.replace(/\s+/g, '')), u8 = new Uint8Array(bin.length);
      for (var k = 0; k < bin.length; k++) u8[k] = bin.charCodeAt(k);
      var ds = new Blob([u8]).stream().pipeThrough(new DecompressionStream('gzip'));
      resolve(new Response(ds).text().then(JSON.parse));
    }).then(function (v) {
      folded = arr(v);
      return folded;
    }, function (e) {
      folded = [];
      fatal('The full file lists could not be read: ' + (e && e.message));
      return folded;
    });
    return foldedP;
  }
  // filesOf is the file list of p: the whole of it once the folded lists
  // are loaded, else what the model holds (everything but folded reads).
  function filesOf(p) {
    if (folded && isFolded(p)) {
      var f = folded[p.files_folded];
      if (Array.isArray(f)) return f;
    }
    return arr(p.files);
  }
  function isRead(f) { return f.op === 'open' && f.mode === 'r' && !f.error && f.search !== true; }
  // readDir is the directory of a read's path, as report/fold.go computes it.
  function readDir(path) {
    var k = path.lastIndexOf('/');
    return k < 0 ? '.' : k === 0 ? '/' : path.slice(0, k);
  }

  var capStart = T(cap.start), capEnd = T(cap.end);
  var start = new Float64Array(N), end = new Float64Array(N), ended = new Uint8Array(N);
  var lo = capStart, hi = capEnd;
  for (var i = 0; i < N; i++) {
    var s = T(procs[i].start), e = T(procs[i].end);
    if (s === null) s = capStart !== null ? capStart : 0;
    start[i] = s;
    if (e !== null) { end[i] = e; ended[i] = 1; } else end[i] = NaN;
    if (lo === null || s < lo) lo = s;
    if (hi === null || s > hi) hi = s;
    if (e !== null && e > hi) hi = e;
  }
  if (lo === null) lo = 0;
  if (hi === null || hi <= lo) hi = lo + 1e9;
  var T0 = capStart !== null ? capStart : lo;  // "+0" of relative times
  // The timeline opens on the capture; processes alive before it start at
  // its left edge.
  var fitLo = capStart !== null ? capStart : lo, fitHi = capEnd !== null && capEnd > fitLo ? capEnd : hi;
  for (i = 0; i < N; i++) if (!ended[i]) end[i] = hi;  // alive at the end

  // descendants, for the "+N" of collapsed rows: children follow parents
  var desc = new Int32Array(N);
  for (i = N - 1; i >= 0; i--) if (parent[i] >= 0) desc[parent[i]] += desc[i] + 1;

  // ---- groups: the host and each container ---------------------------------

  var groups = [], groupById = new Map();
  function group(id, info) {
    var key = id === null ? null : str(id);
    var g = groupById.get(key);
    if (!g) {
      g = { idx: groups.length, id: key, info: info || null, roots: [], count: 0, open: true };
      groups.push(g); groupById.set(key, g);
    } else if (info && !g.info) g.info = info;
    return g;
  }
  group(null);
  arr(M.containers).forEach(function (c) { c = obj(c); group(str(c.id), c); });
  var gidx = new Int32Array(N), gdepth = new Int32Array(N), cross = new Uint8Array(N);
  for (i = 0; i < N; i++) {
    var ct = procs[i].container;
    var g = group(ct === null || ct === undefined || ct === '' ? null : ct);
    gidx[i] = g.idx; g.count++;
    var par = parent[i];
    if (par < 0 || gidx[par] !== g.idx) {
      g.roots.push(i);
      if (par >= 0) cross[i] = 1;
      gdepth[i] = 0;
    } else gdepth[i] = gdepth[par] + 1;
  }
  if (groups[0].count === 0 && groups.length > 1) groups[0].hidden = true;

  // ---- header -----------------------------------------------------------------

  function renderHeader() {
    var host = str(cap.host) || 'unknown host';
    $('host').textContent = vis(host);
    document.title = 'proctrail · ' + vis(host);
    var span = [];
    if (cap.start) span.push(absTime(cap.start) + ' → ' + (cap.end ? absTime(cap.end) : '?') + ' UTC');
    if (capStart !== null && capEnd !== null) span.push('(' + dur(capEnd - capStart) + ')');
    $('span').textContent = span.join(' ');

    var src = obj(cap.sources), cn = obj(src.connector), au = obj(src.audit), pf = obj(src.procfs);
    var facts = $('facts');
    function fact(label, parts) {
      var f = el('span', 'fact');
      f.appendChild(document.createTextNode(label + ' '));
      parts.forEach(function (p) {
        if (typeof p === 'string') f.appendChild(document.createTextNode(p));
        else f.appendChild(p);
      });
      facts.appendChild(f);
    }
    function b(x) { return el('b', null, x); }
    function lost(n) { return n > 0 ? el('span', 'lost', fmtInt(n) + ' lost') : '0 lost'; }
    fact('kernel', [b(vis(cap.kernel) || '?')]);
    fact('processes', [b(fmtInt(N))]);
    fact('containers', [b(fmtInt(groups.length - 1))]);
    fact('connector', [b(fmtInt(cn.messages)), ' msgs, ', lost(num(cn.lost) || 0)]);
    var ap = [b(fmtInt(au.messages)), ' msgs, ', b(fmtInt(au.events)), ' events, ', lost(num(au.lost) || 0)];
    if (num(au.gaps)) ap.push(', ', el('span', 'lost', fmtInt(au.gaps) + ' gaps'));
    fact('audit', ap);
    fact('procfs', [b(fmtInt(pf.records)), ' records']);
    var files = arr(cap.files);
    if (files.length) fact(files.length === 1 ? 'file' : 'files', [el('span', 'mono', files.map(vis).join(', '))]);

    var warn = [];
    if (num(cn.lost) > 0) warn.push('the process connector lost ' + fmtInt(cn.lost) + ' messages');
    if (num(au.lost) > 0) warn.push('audit lost ' + fmtInt(au.lost) + ' messages');
    if (num(au.gaps) > 0) warn.push('audit has ' + fmtInt(au.gaps) + ' sequence gaps');
    if (num(cap.unreadable_bytes) > 0) warn.push(fmtInt(cap.unreadable_bytes) + ' bytes of the capture could not be read');
    if (num(cap.skipped_lines) > 0) warn.push(fmtInt(cap.skipped_lines) + ' lines of the auditd logs were skipped');
    if (warn.length) {
      var bn = $('loss-banner');
      bn.textContent = '⚠ Incomplete capture: ' + warn.join('; ') +
        '. Processes, files and parents may be missing or wrong.';
      bn.hidden = false;
    }
  }

  // ---- status of a process ----------------------------------------------------

  function status(p) {
    var sig = num(p.signal), code = num(p.exit_code);
    if (sig !== null && sig !== 0) return { text: sigName(sig) + (p.core_dumped ? ' (core)' : ''), cls: 'bad' };
    if (code !== null) return { text: 'exit ' + code, cls: code === 0 ? 'ok' : 'bad' };
    if (p.end === null || p.end === undefined) return { text: 'running', cls: 'run' };
    return { text: 'ended', cls: 'gone' };
  }

  // ---- search ------------------------------------------------------------------

  var hay = null;  // lowercased text per process, built on the first search
  function buildHay() {
    hay = new Array(N);
    for (var i = 0; i < N; i++) {
      var p = procs[i], parts = [str(p.comm), arr(p.argv).join(' '), str(p.exe), str(p.cwd)];
      arr(p.execs).forEach(function (x) { x = obj(x); parts.push(str(x.exe), arr(x.argv).join(' '), str(x.cwd)); });
      filesOf(p).forEach(function (f) { f = obj(f); parts.push(str(f.path), str(f.to), str(f.container_path), str(f.to_container_path)); });
      arr(p.net).forEach(function (e) { parts.push(endpoint(obj(e))); });
      parts.push(str(p.container));
      hay[i] = parts.join('\n').toLowerCase();
    }
  }
  function fieldText(p, key) {
    switch (key) {
      case 'comm': return str(p.comm);
      case 'argv': return arr(p.argv).join(' ') + '\n' + arr(p.execs).map(function (x) { return arr(obj(x).argv).join(' '); }).join('\n');
      case 'exe': return str(p.exe) + '\n' + arr(p.execs).map(function (x) { return str(obj(x).exe); }).join('\n');
      case 'path': return [str(p.exe), str(p.cwd)].concat(filesOf(p).map(function (f) { f = obj(f); return [str(f.path), str(f.to), str(f.container_path), str(f.to_container_path)].join('\n'); })).join('\n');
      case 'ct': case 'container': return str(p.container) || 'host';
    }
    return '';
  }
  // endpoint is a network entry's address as the tree shows it:
  // 203.0.113.7:443, [::1]:53, a unix path, "port N" for netlink.
  function endpoint(e) {
    var a = str(e.addr), port = num(e.port);
    if (a) return (a.indexOf(':') >= 0 ? '[' + a + ']' : a) + ':' + (port === null ? 0 : port);
    if (e.path) return str(e.path);
    if (port) return (e.family === 'netlink' ? 'port ' : ':') + port;
    return '';
  }
  // netMatch: net::443 is that port exactly; net:203.0.113. any part of
  // an address or path.
  function netMatch(p, v) {
    return arr(p.net).some(function (e) {
      e = obj(e);
      if (/^:[0-9]+$/.test(v)) return str(e.addr) !== '' && String(num(e.port)) === v.slice(1);
      return v !== '' && endpoint(e).toLowerCase().indexOf(v) >= 0;
    });
  }
  // parseQuery turns "make path:/etc pid:12" into terms that must all match.
  function parseQuery(q) {
    return q.trim().split(/\s+/).filter(Boolean).map(function (t) {
      var m = /^(pid|ppid|comm|argv|exe|path|net|ct|container):(.*)$/i.exec(t);
      if (m) return { key: m[1].toLowerCase(), v: m[2].toLowerCase() };
      return { key: '', v: t.toLowerCase() };
    });
  }
  function matches(i, terms) {
    var p = procs[i];
    for (var k = 0; k < terms.length; k++) {
      var t = terms[k];
      if (t.key === '') {
        if (String(p.pid) === t.v) continue;
        if (hay[i].indexOf(t.v) >= 0) continue;
        return false;
      }
      if (t.key === 'pid') { if (String(p.pid) === t.v) continue; return false; }
      if (t.key === 'ppid') { if (String(p.ppid) === t.v) continue; return false; }
      if (t.key === 'net') { if (netMatch(p, t.v)) continue; return false; }
      if (fieldText(p, t.key).toLowerCase().indexOf(t.v) >= 0) continue;
      return false;
    }
    return true;
  }

  var filter = null;  // null, or {hit, vis, count}
  var searchSeq = 0;  // the latest search; one waiting for the folded lists applies only if still latest
  function applySearch(q) {
    var seq = ++searchSeq;
    if (q.trim() && anyFolded && !folded) {
      // Every file a process read is searched: load the folded lists first.
      loadFolded().then(function () { if (seq === searchSeq) applySearch(q); });
      return;
    }
    if (!q.trim()) {
      if (!filter) return;
      clearSearch();
      renderTree();
      if (sel >= 0) reveal(sel, false);
      timeline.draw();
      return;
    }
    if (!hay) buildHay();
    var terms = parseQuery(q);
    var hit = new Uint8Array(N), shown = new Uint8Array(N), count = 0;
    var groupHits = groups.map(function () { return 0; });
    for (var i = 0; i < N; i++) {
      if (!matches(i, terms)) continue;
      hit[i] = 1; count++; groupHits[gidx[i]]++;
      for (var j = i; j >= 0 && !shown[j]; j = parent[j]) shown[j] = 1;
    }
    // open every node with a shown child: the matches show in place
    var opened = new Uint8Array(N);
    for (i = 0; i < N; i++) if (shown[i] && parent[i] >= 0) opened[parent[i]] = 1;
    filter = { hit: hit, vis: shown, open: opened, count: count, groupHits: groupHits };
    $('search-count').textContent = count === 1 ? '1 match' : fmtInt(count) + ' matches';
    renderTree();
    timeline.draw();
    // The query shown, for tests and scripts: typing applies each prefix
    // of a query in turn, so a count alone may be that of a prefix.
    $('search-count').dataset.query = q;
  }

  // ---- the tree -----------------------------------------------------------------
  //
  // The rows are one flat list per group, in depth-first order, indented by
  // depth: no nesting, so a fork chain thousands deep lays out like any
  // list. Expanding a node inserts the rows of its shown subtree after it;
  // collapsing removes the rows that follow it with a greater depth.

  var treeEl = $('tree');
  var open = new Uint8Array(N);   // expanded, when no search is active
  var rowEl = new Array(N);       // the row of each process, while it is built
  var sel = -1;

  function openState() { return filter ? filter.open : open; }
  function isOpen(i) { return openState()[i] === 1; }
  function visibleKids(i) {
    var k = kids[i];
    if (!filter) return k;
    return k.filter(function (c) { return filter.vis[c]; });
  }
  function hasVisibleKid(i) {
    var k = kids[i];
    if (!filter) return k.length > 0;
    for (var j = 0; j < k.length; j++) if (filter.vis[k[j]]) return true;
    return false;
  }
  function indent(d) { return (6 + Math.min(d, 40) * 16) + 'px'; }

  function makeRow(i) {
    var p = procs[i], row = el('div', 'row');
    row.dataset.pid = str(p.pid);
    row.dataset.idx = i;
    row.dataset.depth = gdepth[i];
    row.setAttribute('role', 'treeitem');
    row.style.paddingLeft = indent(gdepth[i]);
    var has = hasVisibleKid(i), opened = has && isOpen(i);
    row.appendChild(el('span', has ? 'tog' : 'tog leaf', opened ? '▾' : '▸'));
    row.appendChild(el('span', 'pid', str(p.pid)));
    row.appendChild(el('span', 'comm', vis(p.comm) || '?'));
    var argv = arr(p.argv);
    var a = argvLine(argv.length > 64 ? argv.slice(0, 64) : argv);
    row.appendChild(el('span', 'argv', a.length > 400 ? a.slice(0, 400) + '…' : a));
    if (has && !opened && !filter) row.appendChild(el('span', 'more', '+' + fmtInt(desc[i])));
    if (p.command) row.appendChild(el('span', 'badge', 'recorded'));
    if (p.before_capture) row.appendChild(el('span', 'badge', 'pre-existing'));
    var st = status(p);
    row.appendChild(el('span', 'st ' + st.cls, st.text));
    row.appendChild(el('span', 'dur', ended[i] ? dur(end[i] - start[i]) : ''));
    if (opened) row.classList.add('open');
    if (i === sel) row.classList.add('sel');
    if (filter && filter.hit[i]) row.classList.add('hit');
    rowEl[i] = row;
    return row;
  }

  // xrefRow stands in a parent's list for a child that lives in another
  // container's group: the child's own row is there, once.
  function xrefRow(i) {
    var p = procs[i], row = el('div', 'row xref'), d = gdepth[parent[i]] + 1;
    row.dataset.ref = i;
    row.dataset.depth = d;
    row.style.paddingLeft = indent(d);
    row.appendChild(el('span', 'tog leaf', '▸'));
    row.appendChild(el('span', 'arrow', '↳'));
    row.appendChild(el('span', 'pid', str(p.pid)));
    row.appendChild(el('span', null, (vis(p.comm) || '?') + ' runs in ' + groupName(groups[gidx[i]])));
    return row;
  }

  // emitKids appends to frag the rows of the shown subtrees of i's
  // children, depth first, with an explicit stack.
  function emitKids(i, frag) {
    var stack = [], ks = visibleKids(i), j;
    for (j = ks.length - 1; j >= 0; j--) stack.push(ks[j]);
    while (stack.length) {
      var k = stack.pop();
      if (cross[k]) { frag.appendChild(xrefRow(k)); continue; }
      frag.appendChild(makeRow(k));
      if (!isOpen(k)) continue;
      ks = visibleKids(k);
      for (j = ks.length - 1; j >= 0; j--) stack.push(ks[j]);
    }
  }

  function expand(i) {
    openState()[i] = 1;
    var row = rowEl[i];
    if (!row || row.classList.contains('open') || !hasVisibleKid(i)) return;
    row.classList.add('open');
    row.firstChild.textContent = '▾';
    var more = row.querySelector(':scope > .more');
    if (more) more.remove();
    var frag = document.createDocumentFragment();
    emitKids(i, frag);
    row.after(frag);
  }

  function collapse(i) {
    openState()[i] = 0;
    var row = rowEl[i];
    if (!row || !row.classList.contains('open')) return;
    row.classList.remove('open');
    row.firstChild.textContent = '▸';
    var d = gdepth[i], next;
    while ((next = row.nextElementSibling) && +next.dataset.depth > d) {
      if (next.dataset.idx !== undefined) rowEl[+next.dataset.idx] = undefined;
      next.remove();
    }
    if (!filter) row.insertBefore(el('span', 'more', '+' + fmtInt(desc[i])), row.querySelector(':scope > .argv').nextSibling);
  }

  function toggle(i) {
    if (rowEl[i] && rowEl[i].classList.contains('open')) collapse(i);
    else expand(i);
  }

  function groupName(g) {
    if (g.id === null) return 'host';
    return 'container ' + vis(g.id.length > 12 ? g.id.slice(0, 12) : g.id);
  }

  function renderTree() {
    rowEl = new Array(N);
    var frag = document.createDocumentFragment(), shown = 0;
    groups.forEach(function (g) {
      if (g.hidden) return;
      var roots = filter ? g.roots.filter(function (r) { return filter.vis[r]; }) : g.roots;
      if (filter && roots.length === 0) return;
      shown++;
      var gd = el('div', g.open ? 'group' : 'group closed'), head = el('div', 'group-head');
      gd.dataset.group = g.idx;
      gd.dataset.container = g.id === null ? '' : g.id;
      head.appendChild(el('span', 'tog', g.open ? '▾' : '▸'));
      head.appendChild(el('span', 'gname', g.id === null ? 'host' : 'container'));
      if (g.id !== null) {
        var gid = el('span', 'gid', vis(g.id.length > 12 ? g.id.slice(0, 12) : g.id));
        gid.title = vis(g.id);
        head.appendChild(gid);
        var info = obj(g.info), meta = [];
        if (info.runtime) meta.push(vis(info.runtime));
        meta.push('rootfs ' + (info.rootfs ? vis(info.rootfs) : '?'));
        head.appendChild(el('span', 'gmeta', meta.join(' · ')));
      }
      var total = g.count === 1 ? '1 process' : fmtInt(g.count) + ' processes';
      head.appendChild(el('span', 'gcount', filter ? fmtInt(filter.groupHits[g.idx]) + ' of ' + total : total));
      var rows = el('div', 'rows'), rf = document.createDocumentFragment();
      rows.setAttribute('role', 'group');
      roots.forEach(function (r) {
        rf.appendChild(makeRow(r));
        if (isOpen(r)) emitKids(r, rf);
      });
      if (g.roots.length === 0) rf.appendChild(el('div', 'none', N === 0 ? 'This capture has no processes.' : 'No process of this capture ran in it.'));
      rows.appendChild(rf);
      gd.appendChild(head);
      gd.appendChild(rows);
      frag.appendChild(gd);
    });
    treeEl.textContent = '';
    if (filter && shown === 0) treeEl.appendChild(el('div', 'none', 'No process matches.'));
    treeEl.appendChild(frag);
  }

  function toggleGroup(gd) {
    var g = groups[+gd.dataset.group];
    g.open = !g.open;
    gd.classList.toggle('closed', !g.open);
    gd.firstChild.firstChild.textContent = g.open ? '▾' : '▸';
  }

  function clearSearch() {
    $('search').value = '';
    $('search-count').textContent = '';
    delete $('search-count').dataset.query;
    filter = null;
  }

  // reveal expands the ancestors of i within its group and selects it. A
  // process that the search hides is selected without a row, unless
  // clear is set: then the search goes.
  function reveal(i, clear) {
    if (filter && !filter.vis[i]) {
      if (!clear) { select(i, false); return; }
      clearSearch();
      renderTree();
      timeline.draw();
    }
    var g = groups[gidx[i]];
    if (!g.open) {
      var gd = treeEl.querySelector('.group[data-group="' + g.idx + '"]');
      if (gd) toggleGroup(gd);
    }
    var chain = [];
    for (var j = parent[i]; j >= 0 && gidx[j] === gidx[i]; j = parent[j]) chain.push(j);
    for (var k = chain.length - 1; k >= 0; k--) expand(chain[k]);
    select(i, true);
  }

  function select(i, scroll) {
    if (sel >= 0 && rowEl[sel]) rowEl[sel].classList.remove('sel');
    sel = i;
    var row = rowEl[i];
    if (row) {
      row.classList.add('sel');
      if (scroll) row.scrollIntoView({ block: 'nearest' });
    }
    renderDetail(i);
    timeline.show(i);
  }

  treeEl.addEventListener('click', function (ev) {
    var head = ev.target.closest('.group-head');
    if (head) { toggleGroup(head.parentNode); return; }
    var row = ev.target.closest('.row');
    if (!row) return;
    if (row.dataset.ref !== undefined) { reveal(+row.dataset.ref, true); return; }
    var i = +row.dataset.idx;
    if (ev.target.classList.contains('tog')) { toggle(i); return; }
    select(i, false);
  });
  treeEl.addEventListener('dblclick', function (ev) {
    var row = ev.target.closest('.row');
    if (row && row.dataset.idx !== undefined && !ev.target.classList.contains('tog')) toggle(+row.dataset.idx);
  });

  // Keyboard: up and down move, right expands, left collapses or goes to
  // the parent. The list of rows is read on each key: O(rows), no more.
  treeEl.addEventListener('keydown', function (ev) {
    var k = ev.key;
    if (k !== 'ArrowDown' && k !== 'ArrowUp' && k !== 'ArrowLeft' && k !== 'ArrowRight' && k !== 'Home' && k !== 'End') return;
    ev.preventDefault();
    var rows = Array.prototype.filter.call(treeEl.querySelectorAll('.group:not(.closed) .row'), function (r) {
      return r.dataset.idx !== undefined;
    });
    if (!rows.length) return;
    var cur = sel >= 0 && rowEl[sel] && rowEl[sel].isConnected ? rows.indexOf(rowEl[sel]) : -1;
    if (cur < 0) { select(+rows[0].dataset.idx, true); return; }
    var i = sel;
    if (k === 'ArrowDown' && cur + 1 < rows.length) select(+rows[cur + 1].dataset.idx, true);
    else if (k === 'ArrowUp' && cur > 0) select(+rows[cur - 1].dataset.idx, true);
    else if (k === 'Home') select(+rows[0].dataset.idx, true);
    else if (k === 'End') select(+rows[rows.length - 1].dataset.idx, true);
    else if (k === 'ArrowRight') expand(i);
    else if (k === 'ArrowLeft') {
      if (rowEl[i].classList.contains('open')) collapse(i);
      else if (parent[i] >= 0 && gidx[parent[i]] === gidx[i]) select(parent[i], true);
    }
  });

  $('expand-all').addEventListener('click', function () {
    var st = openState();
    if (filter) for (var i = 0; i < N; i++) st[i] = filter.vis[i];
    else st.fill(1);
    groups.forEach(function (g) { g.open = true; });
    renderTree();
    if (sel >= 0) select(sel, true);
  });
  $('collapse-all').addEventListener('click', function () {
    openState().fill(0);
    renderTree();
  });

  var searchTimer = 0;
  $('search').addEventListener('input', function () {
    clearTimeout(searchTimer);
    var q = this.value;
    searchTimer = setTimeout(function () { applySearch(q); }, N > 2000 ? 150 : 40);
  });
  $('search').addEventListener('keydown', function (ev) {
    // Escape drops a search still waiting for its timer too.
    if (ev.key === 'Escape') { clearTimeout(searchTimer); this.value = ''; applySearch(''); }
    else if (ev.key === 'Enter') { clearTimeout(searchTimer); applySearch(this.value); }
  });

  // Open the first levels so that about a screenful of rows shows.
  function initialOpen() {
    var budget = 150, queue = [], nroots = 0;
    groups.forEach(function (g) { g.roots.forEach(function (r) { queue.push(r); }); budget -= g.roots.length; });
    nroots = queue.length;
    for (var q = 0; q < queue.length; q++) {
      var i = queue[q], k = kids[i];
      // a lone root (pid 1, the recorded command) opens even when it has
      // many children: those rows are what the reader came for
      var lone = q < nroots && nroots <= 3 && k.length <= 500;
      if (!k.length || (!lone && k.length > budget + 20)) continue;
      open[i] = 1;
      budget -= k.length;
      for (var j = 0; j < k.length; j++) if (!cross[k[j]]) queue.push(k[j]);
    }
  }

  // ---- the detail panel ------------------------------------------------------------

  var detailEl = $('detail');
  var SHOW = 500;  // rows of a table shown before "show all"

  function link(i, text) {
    var a = el('a', 'link', text);
    a.href = '#';
    a.addEventListener('click', function (ev) { ev.preventDefault(); reveal(i, true); });
    return a;
  }
  function procLabel(i) { var p = procs[i]; return str(p.pid) + ' ' + (vis(p.comm) || '?'); }
  // procByIdentity is the index of the process with this pid and start,
  // or -1.
  var byIdentity = null;
  function procByIdentity(pid, start) {
    if (!byIdentity) {
      byIdentity = new Map();
      for (var k = 0; k < N; k++) byIdentity.set(str(procs[k].pid) + '|' + str(procs[k].start), k);
    }
    var v = byIdentity.get(str(pid) + '|' + str(start));
    return v === undefined ? -1 : v;
  }
  var CHANGE_OP = /create|unlink|rename|mkdir|rmdir|link|chmod|chown|trunc|mknod|xattr|utime|mount/;
  // fileDetails appends to node what else is known of a file access or
  // a change: link target or mount source, type, mode with set-uid and
  // set-gid called out, owner, size, flags.
  function fileDetails(node, f) {
    var parts = [];
    if (f.target) parts.push((str(f.op) === 'mount' ? 'from ' : '→ ') + vis(f.target));
    if (f.type) parts.push(vis(f.type));
    if (f.perm) parts.push(vis(f.perm));
    if (f.owner) parts.push('owner ' + vis(f.owner));
    if (f.size !== undefined && f.size !== null) parts.push('size ' + str(f.size));
    if (f.flags) parts.push(str(f.op) === 'utime' ? (f.flags === 'set' ? 'times set' : 'now') : '[' + vis(f.flags) + ']');
    if (parts.length) node.appendChild(el('span', 'detail-x', ' ' + parts.join(' ')));
    if (f.setuid) node.appendChild(el('span', 'badge warn', 'SETUID'));
    if (f.setgid) node.appendChild(el('span', 'badge warn', 'SETGID'));
  }
  function timeCell(s, t) {
    var td = el('td', 't', t === null ? '–' : rel(t));
    if (s) td.title = absTime(s) + ' UTC';
    return td;
  }

  // table appends to box (the detail panel when not given) a titled table
  // of items, SHOW rows at first.
  function table(title, headers, items, rowFn, box, count) {
    box = box || detailEl;
    var h = el('h3', null, title);
    h.appendChild(el('span', 'n', fmtInt(count === undefined ? items.length : count)));
    box.appendChild(h);
    if (!items.length) { box.appendChild(el('div', 'hint', 'none')); return h; }
    var t = el('table'), thead = el('thead'), tr = el('tr');
    headers.forEach(function (x) { tr.appendChild(el('th', null, x)); });
    thead.appendChild(tr); t.appendChild(thead);
    var tb = el('tbody');
    t.appendChild(tb);
    box.appendChild(t);
    paged(tb, box, items, rowFn);
    return h;
  }

  // paged fills the table body tb with the rows rowFn makes of items (each
  // an object), SHOW of them, and then appends to box a button that adds
  // the others.
  function paged(tb, box, items, rowFn) {
    function fill(from, to) {
      var frag = document.createDocumentFragment();
      for (var k = from; k < to; k++) frag.appendChild(rowFn(obj(items[k]), k));
      tb.appendChild(frag);
    }
    fill(0, Math.min(items.length, SHOW));
    if (items.length > SHOW) {
      var btn = el('button', null, 'Show all ' + fmtInt(items.length));
      btn.type = 'button';
      btn.addEventListener('click', function (ev) { ev.stopPropagation(); fill(SHOW, items.length); btn.remove(); });
      box.appendChild(btn);
    }
  }

  // foldSearches groups a process's file accesses for the table: the
  // attempts of one search (marked "search" by analyze: one name tried in
  // directory after directory) are one row, {last, tries}.
  function baseName(p) { var i = p.lastIndexOf('/'); return i >= 0 ? p.slice(i + 1) : p; }
  function dirName(p) { var i = p.lastIndexOf('/'); return i >= 0 ? p.slice(0, i) : ''; }
  function notFound(f) { return f.op === 'exec' && (f.error === 'ENOENT' || f.error === 'ENOTDIR'); }
  function foldSearches(files) {
    var out = [];
    files.forEach(function (f) {
      f = obj(f);
      var g = out.length ? out[out.length - 1] : null, prev = g && g.last;
      if (f.search && prev && prev.search && prev.error && prev.op === f.op &&
          baseName(str(prev.path)) === baseName(str(f.path)) && dirName(str(prev.path)) !== dirName(str(f.path))) {
        g.tries.push(f); g.last = f;
      } else {
        out.push({ last: f, tries: [f] });
      }
    });
    return out;
  }

  // fileRow is the row of the Files table for g, one access or one
  // folded search.
  var fileRow = function (g) {
    var f = g.last, tr = el('tr');
    var op = str(f.op), mode = str(f.mode);
    var opc = el('td'); opc.appendChild(el('span', /w/.test(mode) || CHANGE_OP.test(op) ? 'op w' : 'op', vis(op) || '?'));
    tr.appendChild(opc);
    tr.appendChild(el('td', 'mono', vis(mode)));
    var allMissing = g.tries.every(notFound);
    var pc = el('td', 'path mono', g.tries.length > 1 && f.error ? vis(baseName(str(f.path))) : vis(f.path));
    if (f.container_path) pc.appendChild(el('span', 'ctp', ' in the container ' + vis(f.container_path)));
    else if (f.filesystem) pc.appendChild(el('span', 'ctp', ' ' + vis(f.filesystem) + ', no host path'));
    if (f.to) pc.appendChild(document.createTextNode(' → ' + vis(f.to)));
    if (f.to_container_path) pc.appendChild(el('span', 'ctp', ' in the container ' + vis(f.to_container_path)));
    fileDetails(pc, f);
    if (f.error) pc.appendChild(el('span', 'err', allMissing ? ': command not found' : ' ' + vis(f.error)));
    if (f.unresolved === true) pc.appendChild(el('span', 'err', ' (directory unknown)'));
    if (g.tries.length > 1) {
      pc.appendChild(el('span', 'sub', ' (tried ' + g.tries.length + ' places)'));
      pc.title = g.tries.map(function (t) { return vis(str(t.path)) + (t.error ? ' ' + vis(str(t.error)) : ''); }).join('\n');
      tr.className = 'search';
    }
    tr.appendChild(pc);
    tr.appendChild(timeCell(g.tries[0].open, T(g.tries[0].open)));
    tr.appendChild(timeCell(f.close, T(f.close)));
    return tr;
  };

  // renderFiles fills box with the Files table of process i, whose reads
  // are folded: its other accesses and a button that shows every access
  // in order (full); or that whole list.
  function renderFiles(i, box, full) {
    var p = procs[i];
    box.textContent = '';
    var files = full ? filesOf(p) : arr(p.files);
    var h = table('Files', ['op', 'mode', 'path', 'open', 'close'], foldSearches(files), fileRow, box);
    if (full) { box.dataset.full = '1'; return; }
    var nreads = arr(p.read_dirs).reduce(function (n, d) { return n + (num(obj(d).count) || 0); }, 0);
    var note = el('div', 'hint', 'Every access but its ' + fmtInt(nreads) + ' reads, which are by directory below. ');
    var btn = el('button', null, 'Show every access, reads too');
    btn.type = 'button';
    btn.id = 'files-all';
    btn.addEventListener('click', function () {
      btn.disabled = true;
      loadFolded().then(function () {
        if (box.isConnected) renderFiles(i, box, true);
      });
    });
    note.appendChild(btn);
    note.id = 'files-note';
    box.insertBefore(note, h.nextSibling);
  }

  // renderReadDirs appends the table of process i's reads by directory; a
  // click on a directory lists its reads (from the folded list).
  function renderReadDirs(i) {
    var p = procs[i], dirs = arr(p.read_dirs);
    var total = dirs.reduce(function (n, d) { return n + (num(obj(d).count) || 0); }, 0);
    var h = table('Reads by directory', ['directory', 'reads', 'first', 'last'], dirs, function (d) {
      var tr = el('tr', 'rd-dir');
      tr.dataset.dir = str(d.dir);
      tr.dataset.count = str(num(d.count));
      tr.title = 'Click to list the files read';
      var dc = el('td', 'path mono');
      dc.appendChild(el('span', 'tog', '▸'));
      dc.appendChild(document.createTextNode(' ' + vis(d.dir)));
      tr.appendChild(dc);
      tr.appendChild(el('td', 'n', fmtInt(d.count)));
      tr.appendChild(timeCell(d.first, T(d.first)));
      tr.appendChild(timeCell(d.last, T(d.last)));
      tr.addEventListener('click', function () { toggleReadDir(i, tr); });
      return tr;
    }, null, total);
    h.classList.add('reads');
  }
  function toggleReadDir(i, tr) {
    var next = tr.nextElementSibling;
    if (tr.classList.contains('rd-open')) {
      tr.classList.remove('rd-open');
      tr.querySelector('.tog').textContent = '▸';
      if (next && next.classList.contains('rd-list')) next.remove();
      return;
    }
    tr.classList.add('rd-open');
    tr.querySelector('.tog').textContent = '▾';
    var lr = el('tr', 'rd-list'), td = el('td');
    td.colSpan = 4;
    lr.dataset.dir = tr.dataset.dir;
    lr.appendChild(td);
    tr.after(lr);
    td.appendChild(el('div', 'hint', 'reading the full list…'));
    loadFolded().then(function () {
      if (!lr.isConnected) return;
      var dir = tr.dataset.dir, reads = filesOf(procs[i]).filter(function (f) {
        f = obj(f);
        return isRead(f) && readDir(str(f.path)) === dir;
      });
      td.textContent = '';
      var t = el('table', 'rd-files'), tb = el('tbody');
      t.appendChild(tb);
      td.appendChild(t);
      paged(tb, td, reads, function (f) {
        var r = el('tr', 'rd-file');
        r.dataset.path = str(f.path);
        var pc = el('td', 'path mono', vis(f.path));
        if (f.container_path) pc.appendChild(el('span', 'ctp', ' in the container ' + vis(f.container_path)));
        else if (f.filesystem) pc.appendChild(el('span', 'ctp', ' ' + vis(f.filesystem) + ', no host path'));
        r.appendChild(pc);
        r.appendChild(timeCell(f.open, T(f.open)));
        r.appendChild(timeCell(f.close, T(f.close)));
        return r;
      });
      lr.dataset.ready = '1';
    });
  }

  function renderDetail(i) {
    var p = procs[i];
    detailEl.textContent = '';
    detailEl.dataset.pid = str(p.pid);
    detailEl.dataset.idx = i;
    detailEl.scrollTop = 0;

    var title = el('div', 'd-title');
    title.appendChild(el('span', 'comm', vis(p.comm) || '?'));
    title.appendChild(el('span', 'pid', 'pid ' + str(p.pid)));
    var st = status(p);
    title.appendChild(el('span', 'st ' + st.cls, st.text));
    if (p.command) title.appendChild(el('span', 'badge', 'recorded command'));
    if (p.before_capture) title.appendChild(el('span', 'badge', 'alive before the capture'));
    if (arr(p.execs).some(function (x) { return obj(x).fileless; })) title.appendChild(el('span', 'badge warn', 'fileless exec'));
    detailEl.appendChild(title);

    var dl = el('dl', 'kv');
    function kv(k, v, cls) {
      dl.appendChild(el('dt', null, k));
      var dd = el('dd', cls);
      if (typeof v === 'string') dd.textContent = v;
      else if (v) dd.appendChild(v);
      dd.dataset.k = k;
      dl.appendChild(dd);
    }
    kv('exe', vis(p.exe) || '–', 'mono');
    var argl = el('div', 'argl');
    arr(p.argv).forEach(function (a) { argl.appendChild(el('span', 'arg', vis(a) || '\u00a0')); });
    if (!arr(p.argv).length) argl.textContent = '–';
    kv('argv', argl);
    kv('cwd', vis(p.cwd) || '–', 'mono');
    kv('uid', p.uid === null || p.uid === undefined ? '–' : str(p.uid), 'mono');
    var pp = el('span');
    if (parent[i] >= 0) pp.appendChild(link(parent[i], procLabel(parent[i])));
    else pp.appendChild(el('span', 'mono', p.ppid === undefined || p.ppid === null ? '–' : str(p.ppid) + ' (not in this capture)'));
    kv('parent', pp);
    var g = groups[gidx[i]];
    if (g.id === null) kv('container', 'host');
    else {
      var cs = el('span', 'mono', vis(g.id));
      var info = obj(g.info);
      if (info.runtime || info.rootfs) cs.appendChild(document.createTextNode(' (' + [vis(info.runtime), info.rootfs ? 'rootfs ' + vis(info.rootfs) : ''].filter(Boolean).join(', ') + ')'));
      kv('container', cs);
    }
    kv('start', p.start ? absTime(p.start) + ' UTC (' + rel(start[i]) + ')' : '–', 'mono');
    kv('end', ended[i] ? absTime(p.end) + ' UTC (' + rel(end[i]) + ')' : 'still running at the end of the capture', 'mono');
    if (ended[i]) kv('duration', dur(end[i] - start[i]));
    var ex = [];
    if (num(p.exit_code) !== null) ex.push('code ' + p.exit_code);
    if (num(p.signal) !== null && p.signal !== 0) ex.push('killed by ' + sigName(p.signal) + ' (' + p.signal + ')');
    if (p.core_dumped) ex.push('core dumped');
    kv('exit', ex.length ? ex.join(', ') : (ended[i] ? 'unknown' : '–'));
    detailEl.appendChild(dl);

    table('Execs', ['time', 'exe, argv and cwd'], arr(p.execs), function (x) {
      var tr = el('tr');
      tr.appendChild(timeCell(x.time, T(x.time)));
      var td = el('td', 'path');
      var xe = el('div', 'mono', vis(x.exe) || '?');
      if (x.fileless) xe.appendChild(el('span', 'badge warn', 'fileless'));
      td.appendChild(xe);
      td.appendChild(el('div', 'mono sub', argvLine(x.argv)));
      if (x.cwd) td.appendChild(el('div', 'mono sub', 'in ' + vis(x.cwd)));
      tr.appendChild(td);
      return tr;
    });
    table('Threads', ['tid', 'start', 'end', 'lifetime'], arr(p.threads), function (x) {
      var tr = el('tr'), s = T(x.start), e = T(x.end);
      tr.appendChild(el('td', 'mono', str(x.tid)));
      tr.appendChild(timeCell(x.start, s));
      var ee = e === null && ended[i] ? end[i] : e;
      tr.appendChild(timeCell(x.end, ee));
      tr.appendChild(el('td', 't', s !== null && ee !== null ? dur(ee - s) : 'running'));
      return tr;
    });
    if (arr(p.signals).length) table('Signals', ['op', 'signal', 'target', 'time'], arr(p.signals), function (sg) {
      var tr = el('tr');
      tr.appendChild(el('td', 'mono', vis(sg.op)));
      tr.appendChild(el('td', 'mono', str(sg.op) === 'ptrace' ? vis(sg.request) : sigName(sg.signal) + ' (' + str(sg.signal) + ')'));
      var tc = el('td', 'mono'), tg = obj(sg.target);
      var ti = tg.pid !== undefined ? procByIdentity(tg.pid, tg.start) : -1;
      if (ti >= 0) tc.appendChild(link(ti, procLabel(ti)));
      else if (tg.pid !== undefined) tc.textContent = str(tg.pid) + ' ' + vis(tg.comm);
      else if (str(sg.request) === 'traceme') tc.textContent = 'its parent';
      else tc.textContent = 'pid ' + str(sg.pid);
      if (tg.pid !== undefined && sg.pid !== tg.pid) tc.appendChild(el('span', 'detail-x', ' (pid ' + str(sg.pid) + ')'));
      if (sg.error) tc.appendChild(el('span', 'err', ' ' + vis(sg.error)));
      tr.appendChild(tc);
      tr.appendChild(timeCell(sg.time, T(sg.time)));
      return tr;
    });
    if (isFolded(p)) {
      // In a box of its own, which the full list replaces.
      var filesBox = el('div', 'files');
      filesBox.id = 'files-section';
      detailEl.appendChild(filesBox);
      renderFiles(i, filesBox, false);
      renderReadDirs(i);
    } else table('Files', ['op', 'mode', 'path', 'open', 'close'], foldSearches(arr(p.files)), fileRow);
    // Only for a process with entries: a capture recorded without the
    // network rules has none anywhere, and "none" would claim too much.
    if (arr(p.net).length) table('Network', ['op', 'protocol', 'address', 'time'], arr(p.net), function (e) {
      e = obj(e);
      var tr = el('tr');
      var opc = el('td'); opc.appendChild(el('span', /bind|listen|accept/.test(str(e.op)) ? 'op w' : 'op', vis(str(e.op)) || '?'));
      tr.appendChild(opc);
      tr.appendChild(el('td', 'mono', [vis(str(e.family)), vis(str(e.proto))].filter(Boolean).join(' ')));
      var ac = el('td', 'path mono', vis(endpoint(e)) || '–');
      if (e.error) ac.appendChild(el('span', 'err', ' ' + vis(str(e.error))));
      tr.appendChild(ac);
      tr.appendChild(timeCell(e.time, T(e.time)));
      return tr;
    });
    var ks = kids[i];
    table('Children', ['pid', 'command', 'status'], ks, function (_, k) {
      var c = ks[k], tr = el('tr'), td = el('td', 'mono');
      td.appendChild(link(c, str(procs[c].pid)));
      tr.appendChild(td);
      tr.appendChild(el('td', 'path', argvLine(procs[c].argv) || vis(procs[c].comm)));
      tr.appendChild(el('td', 't', status(procs[c]).text));
      return tr;
    });
  }

  // ---- the timeline ------------------------------------------------------------------

  var timeline = (function () {
    var box = $('timeline'), cv = $('timeline-canvas'), spacer = $('timeline-spacer'), tip = $('tooltip');
    var ctx = cv.getContext('2d');
    var AXIS = 20, LABEL = 14, PAD = 8;
    var lane = new Int32Array(N);
    var bands = [];   // per shown group: {g, y, lanes: [[idx...]...]}
    var laneH = 10, total = 0;
    var v0 = fitLo, v1 = fitHi;   // the time range in view
    var colors = [];

    // Greedy interval packing per group: sorted by start, each process goes
    // to the lane that frees first (a binary heap), O(n log n).
    (function pack() {
      var byGroup = groups.map(function () { return []; });
      for (var i = 0; i < N; i++) byGroup[gidx[i]].push(i);
      var maxLanes = 0;
      byGroup.forEach(function (list, gi) {
        if (!list.length) return;
        list.sort(function (a, b) { return start[a] - start[b] || a - b; });
        var heap = [], laneEnd = [], lanes = [];
        function less(a, b) { return laneEnd[a] < laneEnd[b] || (laneEnd[a] === laneEnd[b] && a < b); }
        function push(l) {
          heap.push(l);
          for (var c = heap.length - 1; c > 0;) {
            var p = (c - 1) >> 1;
            if (!less(heap[c], heap[p])) break;
            var t = heap[c]; heap[c] = heap[p]; heap[p] = t; c = p;
          }
        }
        function pop() {
          var top = heap[0], last = heap.pop();
          if (heap.length) {
            heap[0] = last;
            for (var c = 0; ;) {
              var l = 2 * c + 1, r = l + 1, m = c;
              if (l < heap.length && less(heap[l], heap[m])) m = l;
              if (r < heap.length && less(heap[r], heap[m])) m = r;
              if (m === c) break;
              var t = heap[c]; heap[c] = heap[m]; heap[m] = t; c = m;
            }
          }
          return top;
        }
        list.forEach(function (i) {
          var l;
          if (heap.length && laneEnd[heap[0]] <= start[i]) l = pop();
          else { l = lanes.length; lanes.push([]); }
          lanes[l].push(i);
          lane[i] = l;
          laneEnd[l] = Math.max(end[i], start[i]);
          push(l);
        });
        bands.push({ g: groups[gi], lanes: lanes, y: 0 });
        maxLanes += lanes.length;
      });
      var all = maxLanes;
      laneH = all <= 12 ? 14 : all <= 24 ? 10 : all <= 60 ? 6 : 4;
      var y = AXIS;
      bands.forEach(function (b) { b.y = y + LABEL; y += LABEL + b.lanes.length * laneH + PAD; });
      total = y;
      box.style.height = Math.min(total, 190) + 'px';
    })();
    var bandOf = new Int32Array(N);
    bands.forEach(function (b, bi) { b.lanes.forEach(function (l) { l.forEach(function (i) { bandOf[i] = bi; }); }); });

    function css(name) { return getComputedStyle(document.documentElement).getPropertyValue(name).trim(); }
    var C = {};
    function readColors() {
      C.font = '11px ' + css('--sans');
      ['--host', '--bar-text', '--axis', '--grid', '--fg', '--muted', '--sel-line', '--bad', '--panel', '--mark'].forEach(function (n) { C[n] = css(n); });
      colors = bands.map(function (b, k) {
        if (b.g.id === null) return C['--host'];
        var hue = (150 + b.g.idx * 67) % 360;
        return 'hsl(' + hue + ' 55% 50%)';
      });
    }

    var W = 0, H = 0, dpr = 1;
    function resize() {
      dpr = window.devicePixelRatio || 1;
      W = box.clientWidth; H = box.clientHeight;
      cv.width = Math.max(1, Math.round(W * dpr)); cv.height = Math.max(1, Math.round(H * dpr));
      cv.style.height = H + 'px';
      spacer.style.marginTop = -H + 'px';
      spacer.style.height = total + 'px';
      draw();
    }
    function x(t) { return (t - v0) / (v1 - v0) * W; }
    function tAt(px) { return v0 + px / W * (v1 - v0); }

    function niceStep(span, px) {
      var raw = span / Math.max(1, px / 110), p = Math.pow(10, Math.floor(Math.log10(raw)));
      var m = raw / p;
      return (m < 1.5 ? 1 : m < 3.5 ? 2 : m < 7.5 ? 5 : 10) * p;
    }

    var pending = false;
    function draw() {
      if (pending) return;
      pending = true;
      requestAnimationFrame(paint);
    }
    function paint() {
      pending = false;
      if (!W) return;
      var top = box.scrollTop;
      ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
      ctx.clearRect(0, 0, W, H);
      ctx.font = C.font;
      ctx.textBaseline = 'middle';
      // grid and axis
      var step = niceStep(v1 - v0, W), first = Math.ceil((v0 - T0) / step) * step + T0;
      ctx.fillStyle = C['--grid'];
      for (var t = first; t <= v1; t += step) ctx.fillRect(Math.round(x(t)), AXIS, 1, H - AXIS);
      // bands
      var dim = filter !== null;
      bands.forEach(function (b, bi) {
        var by = b.y - top;
        if (by - LABEL > H || by + b.lanes.length * laneH < AXIS) return;
        ctx.fillStyle = C['--muted'];
        if (by - LABEL / 2 > AXIS) ctx.fillText(groupName(b.g), 4, by - LABEL / 2 + 1);
        var l0 = Math.max(0, Math.floor((top + AXIS - b.y) / laneH)), l1 = Math.min(b.lanes.length - 1, Math.ceil((top + H - b.y) / laneH));
        for (var l = l0; l <= l1; l++) {
          var ly = b.y + l * laneH - top, list = b.lanes[l];
          if (ly + laneH <= AXIS) continue;
          // in a lane, intervals are disjoint and sorted: find the first in view
          var a = 0, z = list.length;
          while (a < z) { var m = (a + z) >> 1; if (end[list[m]] < v0) a = m + 1; else z = m; }
          var lastX = -1;
          for (var k = a; k < list.length; k++) {
            var i = list[k];
            if (start[i] > v1) break;
            var x0 = x(start[i]), x1 = Math.max(x(end[i]), x0 + 1);
            if (x1 < lastX) continue;     // sub-pixel neighbours: one draw is enough
            var hitI = !dim || filter.hit[i];
            ctx.globalAlpha = hitI ? 1 : 0.18;
            ctx.fillStyle = colors[bi];
            ctx.fillRect(x0, ly + 1, x1 - x0, laneH - 2);
            var sig = num(procs[i].signal), code = num(procs[i].exit_code);
            if (ended[i] && ((sig !== null && sig !== 0) || (code !== null && code !== 0)) && x1 - x0 >= 3) {
              ctx.fillStyle = C['--bad'];
              ctx.fillRect(x1 - 3, ly + 1, 3, laneH - 2);
            }
            if (laneH >= 10 && x1 - Math.max(x0, 0) > 40) {
              var lx = Math.max(x0, 0) + 4;
              ctx.save();
              ctx.beginPath();
              ctx.rect(lx, ly, x1 - lx - 4, laneH);
              ctx.clip();
              ctx.fillStyle = C['--bar-text'];
              ctx.fillText(str(procs[i].pid) + ' ' + vis(procs[i].comm), lx, ly + laneH / 2 + 0.5);
              ctx.restore();
            }
            lastX = Math.floor(x1);
          }
        }
      });
      ctx.globalAlpha = 1;
      // the selected process on top
      if (sel >= 0) {
        var sb = bands[bandOf[sel]], sy = sb.y + lane[sel] * laneH - top;
        var sx0 = x(start[sel]), sx1 = Math.max(x(end[sel]), sx0 + 2);
        ctx.fillStyle = C['--sel-line'];
        ctx.fillRect(sx0, sy, sx1 - sx0, laneH);
        ctx.strokeStyle = C['--fg'];
        ctx.lineWidth = 1;
        ctx.strokeRect(Math.round(sx0) - 0.5, sy - 0.5, Math.max(2, Math.round(sx1 - sx0)) + 1, laneH + 1);
        if (laneH >= 10 && sx1 - Math.max(sx0, 0) > 40) {
          var slx = Math.max(sx0, 0) + 4;
          ctx.save();
          ctx.beginPath();
          ctx.rect(slx, sy, sx1 - slx - 4, laneH);
          ctx.clip();
          ctx.fillStyle = C['--bar-text'];
          ctx.fillText(str(procs[sel].pid) + ' ' + vis(procs[sel].comm), slx, sy + laneH / 2 + 0.5);
          ctx.restore();
        }
      }
      // axis over everything, so bars scroll under it
      ctx.fillStyle = C['--panel'];
      ctx.fillRect(0, 0, W, AXIS);
      ctx.fillStyle = C['--axis'];
      ctx.fillRect(0, AXIS - 1, W, 1);
      ctx.fillStyle = C['--muted'];
      for (t = first; t <= v1; t += step) {
        var px = Math.round(x(t));
        ctx.fillRect(px, AXIS - 5, 1, 4);
        var label = t === T0 ? '0' : rel(t);
        var w = ctx.measureText(label).width;
        if (px + 3 + w < W) ctx.fillText(label, px + 3, AXIS / 2);
      }
    }

    // hit finds the process under a point of the canvas, or -1.
    function hit(px, py) {
      var y = py + box.scrollTop;
      if (py < AXIS) return -1;
      for (var bi = 0; bi < bands.length; bi++) {
        var b = bands[bi], l = Math.floor((y - b.y) / laneH);
        if (l < 0 || l >= b.lanes.length) continue;
        var list = b.lanes[l], slack = 3 / W * (v1 - v0), t = tAt(px);
        var a = 0, z = list.length;
        while (a < z) { var m = (a + z) >> 1; if (end[list[m]] < t - slack) a = m + 1; else z = m; }
        if (a < list.length && start[list[a]] <= t + slack) return list[a];
        return -1;
      }
      return -1;
    }

    var drag = null;
    cv.addEventListener('mousedown', function (ev) {
      drag = { x: ev.clientX, v0: v0, v1: v1, moved: false };
      ev.preventDefault();
    });
    window.addEventListener('mousemove', function (ev) {
      if (drag) {
        var dx = ev.clientX - drag.x;
        if (Math.abs(dx) > 3) drag.moved = true;
        if (drag.moved) {
          var dt = dx / W * (drag.v1 - drag.v0);
          v0 = drag.v0 - dt; v1 = drag.v1 - dt;
          draw();
        }
        return;
      }
      if (ev.target !== cv) { tip.hidden = true; return; }
      var r = cv.getBoundingClientRect(), i = hit(ev.clientX - r.left, ev.clientY - r.top);
      cv.style.cursor = i >= 0 ? 'pointer' : 'default';
      if (i < 0) { tip.hidden = true; return; }
      var p = procs[i];
      tip.textContent = str(p.pid) + ' ' + (vis(p.comm) || '?') + ' · ' + status(p).text +
        (ended[i] ? ' · ' + dur(end[i] - start[i]) : '') + ' · ' + rel(start[i]) + '  ' + argvLine(p.argv).slice(0, 200);
      tip.hidden = false;
      var pr = box.parentNode.getBoundingClientRect();
      tip.style.left = Math.min(ev.clientX - pr.left + 12, pr.width - 300) + 'px';
      tip.style.top = (ev.clientY - pr.top + 14) + 'px';
    });
    window.addEventListener('mouseup', function (ev) {
      if (!drag) return;
      var d = drag;
      drag = null;
      if (d.moved || ev.target !== cv) return;
      var r = cv.getBoundingClientRect(), i = hit(ev.clientX - r.left, ev.clientY - r.top);
      if (i >= 0) reveal(i, false);
    });
    cv.addEventListener('mouseleave', function () { tip.hidden = true; });
    function zoom(f, at) {
      var t = tAt(at === undefined ? W / 2 : at), span = (v1 - v0) * f;
      span = Math.max(span, 1e3);
      v0 = t - (t - v0) * f; v1 = v0 + span;
      draw();
    }
    box.addEventListener('wheel', function (ev) {
      if (ev.ctrlKey || ev.metaKey) {
        ev.preventDefault();
        var r = cv.getBoundingClientRect();
        zoom(ev.deltaY > 0 ? 1.25 : 0.8, ev.clientX - r.left);
      } else if (ev.shiftKey || Math.abs(ev.deltaX) > Math.abs(ev.deltaY)) {
        ev.preventDefault();
        var d = (ev.deltaX || ev.deltaY) / W * (v1 - v0);
        v0 += d; v1 += d; draw();
      }
    }, { passive: false });
    box.addEventListener('scroll', draw);
    function fit() { v0 = fitLo; v1 = fitHi; draw(); }
    box.addEventListener('dblclick', fit);
    $('tl-zoom-in').addEventListener('click', function () { zoom(0.5); });
    $('tl-zoom-out').addEventListener('click', function () { zoom(2); });
    $('tl-fit').addEventListener('click', fit);
    window.addEventListener('resize', resize);

    // show scrolls the timeline so that the bar of i is in view.
    function show(i) {
      var b = bands[bandOf[i]], y = b.y + lane[i] * laneH;
      if (y - AXIS < box.scrollTop || y + laneH > box.scrollTop + H) box.scrollTop = Math.max(0, y - AXIS - (H - AXIS) / 2);
      if (end[i] < v0 || start[i] > v1) {
        var span = v1 - v0, mid = (start[i] + end[i]) / 2;
        v0 = mid - span / 2; v1 = mid + span / 2;
      }
      draw();
    }
    // barPoint is the page point at the middle of the visible part of the
    // bar of i, for tests and scripts.
    function barPoint(i) {
      show(i);
      var r = cv.getBoundingClientRect(), b = bands[bandOf[i]];
      var x0 = Math.max(0, x(start[i])), x1 = Math.min(W, Math.max(x(end[i]), x(start[i]) + 1));
      return { x: r.left + (x0 + x1) / 2, y: r.top + b.y + lane[i] * laneH - box.scrollTop + laneH / 2 };
    }
    readColors();
    if (window.matchMedia) {
      var mq = window.matchMedia('(prefers-color-scheme: dark)');
      if (mq.addEventListener) mq.addEventListener('change', function () { readColors(); draw(); });
    }
    return { draw: draw, resize: resize, show: show, barPoint: barPoint, paint: paint };
  })();

  // ---- start -----------------------------------------------------------------------

  // ---- the changes view --------------------------------------------------------------

  // What the processes changed, by directory (the model's "changes"),
  // shown on demand: #changes-panel's data-ready is set once it is
  // rendered.
  var changesEl = $('changes'), changesPanel = $('changes-panel');
  var CH = obj(M.changes);
  function renderChanges() {
    changesEl.textContent = '';
    var dirs = arr(CH.directories), total = 0;
    var counts = obj(CH.counts);
    Object.keys(counts).forEach(function (k) { total += num(counts[k]) || 0; });
    function fmtCounts(c) { c = obj(c); return Object.keys(c).map(function (k) { return vis(k) + ' ' + fmtInt(c[k]); }).join(', '); }
    $('changes-summary').textContent = fmtInt(total) + ' changes in ' + fmtInt(dirs.length) + ' directories by ' +
      fmtInt(CH.processes) + ' processes: ' + fmtCounts(counts);
    dirs.forEach(function (d) {
      d = obj(d);
      var box = el('div', 'ch-dir');
      box.dataset.dir = str(d.dir);
      var head = el('div', 'ch-head');
      head.appendChild(el('span', 'mono', vis(d.dir)));
      head.appendChild(el('span', 'hint', fmtCounts(d.counts)));
      box.appendChild(head);
      var t = el('table'), tb = el('tbody'), items = arr(d.changes);
      function fill(from, to) {
        var frag = document.createDocumentFragment();
        for (var k = from; k < to; k++) {
          var c = obj(items[k]), tr = el('tr', c.gone ? 'gone' : null);
          tr.dataset.op = str(c.op);
          var opc = el('td'); opc.appendChild(el('span', 'op w', vis(c.op) || '?'));
          tr.appendChild(opc);
          var pc = el('td', 'path mono', vis(c.path));
          if (c.from) pc.appendChild(el('span', 'detail-x', ' ← ' + vis(c.from)));
          fileDetails(pc, c);
          if (c.gone) pc.appendChild(el('span', 'badge', 'gone'));
          tr.appendChild(pc);
          var who = el('td', 'mono'), pi = procByIdentity(c.pid, c.start);
          if (pi >= 0) who.appendChild(link(pi, procLabel(pi)));
          else who.textContent = str(c.pid) + ' ' + vis(c.comm);
          if (num(c.count) > 1) who.appendChild(el('span', 'detail-x', ' ×' + fmtInt(c.count)));
          tr.appendChild(who);
          tr.appendChild(timeCell(c.time, T(c.time)));
          frag.appendChild(tr);
        }
        tb.appendChild(frag);
      }
      fill(0, Math.min(items.length, SHOW));
      t.appendChild(tb);
      box.appendChild(t);
      if (items.length > SHOW) {
        var btn = el('button', null, 'Show all ' + fmtInt(items.length));
        btn.type = 'button';
        btn.addEventListener('click', function () { fill(SHOW, items.length); btn.remove(); });
        box.appendChild(btn);
      }
      changesEl.appendChild(box);
    });
    changesPanel.dataset.ready = '1';
  }
  function showChanges(on) {
    if (on && !changesPanel.dataset.ready) renderChanges();
    changesPanel.hidden = !on;
    $('changes-toggle').setAttribute('aria-pressed', on ? 'true' : 'false');
  }
  if (arr(CH.directories).length) {
    var ct = $('changes-toggle');
    ct.hidden = false;
    ct.textContent = 'Changes (' + fmtInt(arr(CH.directories).reduce(function (n, d) { return n + arr(obj(d).changes).length; }, 0)) + ')';
    ct.addEventListener('click', function () { showChanges(changesPanel.hidden); });
    $('changes-close').addEventListener('click', function () { showChanges(false); });
  }

  timings.model = performance.now();
  renderHeader();
  initialOpen();
  renderTree();
  timeline.resize();
  timeline.paint();

  // A small read-only API for tests and for analysts at the console.
  window.proctrail = Object.freeze({
    count: N,
    indexOfPid: function (pid) { for (var i = 0; i < N; i++) if (procs[i].pid === pid) return i; return -1; },
    select: function (i) { reveal(i, true); },
    barPoint: function (i) { return timeline.barPoint(i); },
    search: function (q) { $('search').value = q; applySearch(q); },
    showChanges: function (on) { showChanges(on !== false); },
    loadFolded: function () { return loadFolded().then(function (f) { return f.length; }); },
    timings: timings
  });
  timings.rendered = performance.now();
  Object.freeze(timings);
  document.documentElement.dataset.renderMs = timings.rendered.toFixed(1);
  document.documentElement.dataset.ready = '1';
})();
