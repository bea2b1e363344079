package record

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"

	"github.com/elastic/go-libaudit/v2/rule"
)

// Rules files: auditctl syntax read into rules the kernel takes.

// ParseRules reads auditctl rules-file syntax (as in
// /etc/audit/rules.d/*.rules): one rule per line, blank lines and lines
// starting with '#' skipped. Control lines (-D, -b, -e, -f, -r,
// --backlog_wait_time, …) are rejected: the recorder manages the audit
// state itself. Every rule is checked by building its kernel wire format;
// errors are *RulesError values naming the line. A rule without the key
// [RuleKey] gets " -k proctrail" appended; a rule with another key keeps it
// and gets ours as well (the kernel joins several keys with \x01). The
// returned slice is the caller's.
func ParseRules(r io.Reader) ([]string, error) {
	var rules []string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		parsed, hadKey, err := parseRule(line)
		if err == nil {
			_, err = rule.Build(parsed)
		}
		if err != nil {
			return nil, &RulesError{Line: lineNo, Err: err}
		}
		if !hadKey {
			line += " -k " + RuleKey
		}
		rules = append(rules, line)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("record: reading audit rules: %w", err)
	}
	return rules, nil
}

// RulesError is an error in a rules file, with its 1-based line number.
type RulesError struct {
	Line int
	Err  error
}

func (e *RulesError) Error() string { return fmt.Sprintf("rules file line %d: %v", e.Line, e.Err) }

func (e *RulesError) Unwrap() error { return e.Err }

// buildRule parses one auditctl rule line, makes sure it carries RuleKey and
// returns its kernel wire format.
func buildRule(line string) (rule.WireFormat, error) {
	r, _, err := parseRule(line)
	if err != nil {
		return nil, fmt.Errorf("audit rule %q: %w", line, err)
	}
	wf, err := rule.Build(r)
	if err != nil {
		return nil, fmt.Errorf("audit rule %q: %w", line, err)
	}
	return wf, nil
}

// controlOptions are auditctl options that change the audit state or list
// it rather than describe a rule.
var controlOptions = map[string]bool{
	"-D": true, "-b": true, "-e": true, "-f": true, "-r": true, "-s": true,
	"-l": true, "-i": true, "-c": true, "-R": true, "-v": true, "-t": true,
	"-q": true, "-d": true, "-W": true, "-h": true, "-m": true,
	"--backlog_wait_time": true, "--loginuid-immutable": true,
	"--reset-lost": true, "--reset_backlog_wait_time_actual": true,
	"--signal": true, "--help": true,
}

var (
	// The same syntax go-libaudit's rule/flags accepts.
	valueFilterRe = regexp.MustCompile(`^(\w+)\s*(<=|>=|&=|=|!=|<|>|&)(\S+)$`)
	compareRe     = regexp.MustCompile(`^(\w+)\s*(!?=)(\w+)$`)
)

// parseRule parses an auditctl rule line (-a/-A syscall rules and -w file
// watches) into a go-libaudit rule whose keys include RuleKey; hadKey
// reports whether the line already had it. Keys given as -F key=… are
// folded into the -k list, because the kernel allows only one key field per
// rule and go-libaudit joins -k keys into that one field.
//
// go-libaudit's rule/flags does the same but needs a module (go-shellquote)
// that this module does not require; this parser accepts the same flags.
func parseRule(line string) (r rule.Rule, hadKey bool, err error) {
	args, err := splitRuleLine(line)
	if err != nil {
		return nil, false, err
	}
	var (
		add, prepend       string
		filters            []rule.FilterSpec
		syscalls, keys     []string
		path, perms        string
		syscallOp, watchOp bool
	)
	for i := 0; i < len(args); i++ {
		opt := args[i]
		if controlOptions[opt] || strings.HasPrefix(opt, "--backlog_wait_time=") || strings.HasPrefix(opt, "--loginuid-immutable") {
			return nil, false, fmt.Errorf("%s is a control command, not a rule; proctrail manages the audit state itself", opt)
		}
		switch opt {
		case "-a", "-A", "-F", "-C", "-S", "-w", "-p", "-k":
		default:
			return nil, false, fmt.Errorf("unknown option %q", opt)
		}
		if i+1 >= len(args) {
			return nil, false, fmt.Errorf("option %s needs a value", opt)
		}
		i++
		val := args[i]
		switch opt {
		case "-a", "-A":
			if add != "" || prepend != "" {
				return nil, false, errors.New("only one of -a or -A may be given, once")
			}
			if opt == "-a" {
				add = val
			} else {
				prepend = val
			}
			syscallOp = true
		case "-F":
			m := valueFilterRe.FindStringSubmatch(val)
			if m == nil {
				return nil, false, fmt.Errorf("invalid filter %q", val)
			}
			if m[1] == "key" {
				if m[2] != "=" {
					return nil, false, fmt.Errorf("key filter %q only supports =", val)
				}
				keys = append(keys, m[3])
				continue
			}
			filters = append(filters, rule.FilterSpec{Type: rule.ValueFilterType, LHS: m[1], Comparator: m[2], RHS: m[3]})
			syscallOp = true
		case "-C":
			m := compareRe.FindStringSubmatch(val)
			if m == nil {
				return nil, false, fmt.Errorf("invalid comparison %q", val)
			}
			filters = append(filters, rule.FilterSpec{Type: rule.InterFieldFilterType, LHS: m[1], Comparator: m[2], RHS: m[3]})
			syscallOp = true
		case "-S":
			for _, s := range strings.Split(val, ",") {
				if s = strings.TrimSpace(s); s != "" {
					syscalls = append(syscalls, s)
				}
			}
			syscallOp = true
		case "-w":
			path = val
			watchOp = true
		case "-p":
			perms = val
			watchOp = true
		case "-k":
			keys = append(keys, val)
		}
	}
	hadKey = slices.Contains(keys, RuleKey)
	if !hadKey {
		keys = append(keys, RuleKey)
	}

	switch {
	case syscallOp && watchOp:
		return nil, false, errors.New("a file watch (-w/-p) cannot be mixed with a syscall rule (-a/-A/-F/-C/-S)")
	case watchOp:
		if path == "" {
			return nil, false, errors.New("-p needs a file watch path (-w)")
		}
		var access []rule.AccessType
		for _, c := range perms {
			switch c {
			case 'r':
				access = append(access, rule.ReadAccessType)
			case 'w':
				access = append(access, rule.WriteAccessType)
			case 'x':
				access = append(access, rule.ExecuteAccessType)
			case 'a':
				access = append(access, rule.AttributeChangeAccessType)
			default:
				return nil, false, fmt.Errorf("invalid file access type %q in -p %s", c, perms)
			}
		}
		return &rule.FileWatchRule{Type: rule.FileWatchRuleType, Path: path, Permissions: access, Keys: keys}, hadKey, nil
	case syscallOp:
		spec, typ := add, rule.AppendSyscallRuleType
		if prepend != "" {
			spec, typ = prepend, rule.PrependSyscallRuleType
		}
		if spec == "" {
			return nil, false, errors.New("a syscall rule needs -a or -A")
		}
		list, action, err := parseListAction(spec)
		if err != nil {
			return nil, false, err
		}
		return &rule.SyscallRule{Type: typ, List: list, Action: action, Filters: filters, Syscalls: syscalls, Keys: keys}, hadKey, nil
	}
	return nil, false, errors.New("not a rule: no -a, -A or -w")
}

// parseListAction parses "list,action" in either order, like auditctl.
func parseListAction(spec string) (list, action string, err error) {
	parts := strings.Split(spec, ",")
	if len(parts) != 2 {
		return "", "", fmt.Errorf("expected list,action but got %q", spec)
	}
	for _, p := range parts {
		switch p = strings.TrimSpace(p); p {
		case "task", "exit", "user", "exclude":
			list = p
		case "never", "always":
			action = p
		default:
			return "", "", fmt.Errorf("invalid list or action %q", p)
		}
	}
	if list == "" || action == "" {
		return "", "", fmt.Errorf("expected list,action but got %q", spec)
	}
	return list, action, nil
}

// splitRuleLine splits a rule line into words at blanks. Single and double
// quotes group words and are removed, as go-libaudit's parser does.
func splitRuleLine(line string) ([]string, error) {
	var (
		args  []string
		cur   strings.Builder
		inArg bool
		quote rune
	)
	for _, c := range line {
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			} else {
				cur.WriteRune(c)
			}
		case c == '"' || c == '\'':
			quote, inArg = c, true
		case c == ' ' || c == '\t':
			if inArg {
				args = append(args, cur.String())
				cur.Reset()
				inArg = false
			}
		default:
			cur.WriteRune(c)
			inArg = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inArg {
		args = append(args, cur.String())
	}
	return args, nil
}

// AUDIT_FILTERKEY, the rule field holding the key.
const auditFilterKey = 210
