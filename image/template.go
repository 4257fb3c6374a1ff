package image

import (
	"fmt"
	"strings"

	"github.com/silo-dev/silo/errkind"
)

// Render renders an image template, in the subset of the Jinja-like
// (pongo2) syntax that LXD's image templates use:
//
//	{{ expr }}                       the value of expr
//	{% if expr %}…{% elif expr %}…{% else %}…{% endif %}
//	{# comment #}
//
// where expr is a name or dotted path into vars (container.name,
// config.key, properties.key...), a quoted string, a number, true or
// false, config_get("key", "default"), a comparison (== or !=), not, and,
// or, parentheses, and the filter |default:"value". Nothing in a template
// can run code, read files or loop: rendering is bounded by its length.
func Render(src string, vars map[string]any) (string, error) {
	nodes, err := parseTemplate(src)
	if err != nil {
		return "", errkind.Wrap(errkind.Invalid, "template: %w", err)
	}
	var b strings.Builder
	if err := render(&b, nodes, vars); err != nil {
		return "", errkind.Wrap(errkind.Invalid, "template: %w", err)
	}
	return b.String(), nil
}

// node is text, an output, or an if with its branches.
type node struct {
	text     string
	expr     *expr   // output when not an if
	conds    []*expr // if/elif conditions; a nil one is the else
	branches [][]node
}

func parseTemplate(src string) ([]node, error) {
	p := &tparser{src: src}
	nodes, end, err := p.block()
	if err != nil {
		return nil, err
	}
	if end != "" {
		return nil, fmt.Errorf("{%% %s %%} without {%% if %%}", end)
	}
	return nodes, nil
}

type tparser struct {
	src string
	pos int
}

// block parses nodes up to the end of the text or an elif/else/endif tag,
// which it returns with its condition's source.
func (p *tparser) block() ([]node, string, error) {
	var nodes []node
	for p.pos < len(p.src) {
		i := strings.IndexByte(p.src[p.pos:], '{')
		if i < 0 || p.pos+i+1 >= len(p.src) {
			nodes = append(nodes, node{text: p.src[p.pos:]})
			p.pos = len(p.src)
			break
		}
		open := p.src[p.pos+i : p.pos+i+2]
		closer := map[string]string{"{{": "}}", "{%": "%}", "{#": "#}"}[open]
		if closer == "" {
			nodes = append(nodes, node{text: p.src[p.pos : p.pos+i+1]})
			p.pos += i + 1
			continue
		}
		if i > 0 {
			nodes = append(nodes, node{text: p.src[p.pos : p.pos+i]})
		}
		start := p.pos + i + 2
		j := strings.Index(p.src[start:], closer)
		if j < 0 {
			return nil, "", fmt.Errorf("%s at offset %d is not closed", open, p.pos+i)
		}
		inner := strings.TrimSpace(strings.Trim(p.src[start:start+j], "-"))
		p.pos = start + j + 2
		switch open {
		case "{#":
		case "{{":
			e, err := parseExpr(inner)
			if err != nil {
				return nil, "", err
			}
			nodes = append(nodes, node{expr: e})
		case "{%":
			word, rest, _ := strings.Cut(inner, " ")
			switch word {
			case "if":
				n, err := p.ifNode(rest)
				if err != nil {
					return nil, "", err
				}
				nodes = append(nodes, n)
			case "elif", "else", "endif":
				return nodes, inner, nil
			default:
				return nil, "", fmt.Errorf("unsupported tag {%% %s %%}", word)
			}
		}
	}
	return nodes, "", nil
}

func (p *tparser) ifNode(cond string) (node, error) {
	var n node
	for {
		e, err := parseExpr(cond)
		if err != nil {
			return n, err
		}
		body, end, err := p.block()
		if err != nil {
			return n, err
		}
		n.conds, n.branches = append(n.conds, e), append(n.branches, body)
		word, rest, _ := strings.Cut(end, " ")
		switch word {
		case "endif":
			return n, nil
		case "elif":
			cond = rest
		case "else":
			body, end, err := p.block()
			if err != nil {
				return n, err
			}
			if end != "endif" {
				return n, fmt.Errorf("{%% else %%} must end with {%% endif %%}")
			}
			n.conds, n.branches = append(n.conds, nil), append(n.branches, body)
			return n, nil
		default:
			return n, fmt.Errorf("{%% if %%} is not closed")
		}
	}
}

func render(b *strings.Builder, nodes []node, vars map[string]any) error {
	for _, n := range nodes {
		switch {
		case n.branches != nil:
			for i, c := range n.conds {
				ok := c == nil
				if !ok {
					v, err := c.eval(vars)
					if err != nil {
						return err
					}
					ok = truthy(v)
				}
				if ok {
					if err := render(b, n.branches[i], vars); err != nil {
						return err
					}
					break
				}
			}
		case n.expr != nil:
			v, err := n.expr.eval(vars)
			if err != nil {
				return err
			}
			b.WriteString(str(v))
		default:
			b.WriteString(n.text)
		}
	}
	return nil
}

// expr is an expression tree: an operator over its arguments, or a leaf.
type expr struct {
	op   string // "lit", "var", "call", "==", "!=", "not", "and", "or", "default"
	val  any
	path []string
	args []*expr
}

func (e *expr) eval(vars map[string]any) (any, error) {
	switch e.op {
	case "lit":
		return e.val, nil
	case "var":
		var v any = vars
		for _, k := range e.path {
			switch m := v.(type) {
			case map[string]any:
				v = m[k]
			case map[string]string:
				s, ok := m[k]
				if !ok {
					return nil, nil
				}
				v = s
			default:
				return nil, nil // an unknown name renders empty, as in pongo2
			}
		}
		return v, nil
	case "call": // config_get(key, default)
		key, err := e.args[0].eval(vars)
		if err != nil {
			return nil, err
		}
		cfg, _ := vars["config"].(map[string]string)
		if v, ok := cfg[str(key)]; ok {
			return v, nil
		}
		if len(e.args) > 1 {
			return e.args[1].eval(vars)
		}
		return "", nil
	}
	vals := make([]any, len(e.args))
	for i, a := range e.args {
		v, err := a.eval(vars)
		if err != nil {
			return nil, err
		}
		vals[i] = v
	}
	switch e.op {
	case "==":
		return str(vals[0]) == str(vals[1]), nil
	case "!=":
		return str(vals[0]) != str(vals[1]), nil
	case "not":
		return !truthy(vals[0]), nil
	case "and":
		return truthy(vals[0]) && truthy(vals[1]), nil
	case "or":
		return truthy(vals[0]) || truthy(vals[1]), nil
	case "default":
		if truthy(vals[0]) {
			return vals[0], nil
		}
		return vals[1], nil
	}
	return nil, fmt.Errorf("unknown operator %q", e.op)
}

func truthy(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case bool:
		return v
	case string:
		return v != ""
	case map[string]string:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case bool:
		if v {
			return "True" // as pongo2 prints it
		}
		return "False"
	}
	return fmt.Sprint(v)
}

// parseExpr parses an expression with a small recursive-descent parser.
func parseExpr(src string) (*expr, error) {
	toks, err := tokenize(src)
	if err != nil {
		return nil, err
	}
	p := &eparser{toks: toks}
	e, err := p.or()
	if err != nil {
		return nil, err
	}
	if p.i != len(p.toks) {
		return nil, fmt.Errorf("unexpected %q in %q", p.toks[p.i].s, src)
	}
	return e, nil
}

type token struct {
	s      string
	quoted bool
}

func tokenize(src string) ([]token, error) {
	var toks []token
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			i++
		case c == '"' || c == '\'':
			j := strings.IndexByte(src[i+1:], c)
			if j < 0 {
				return nil, fmt.Errorf("unterminated string in %q", src)
			}
			toks = append(toks, token{s: src[i+1 : i+1+j], quoted: true})
			i += j + 2
		case strings.HasPrefix(src[i:], "==") || strings.HasPrefix(src[i:], "!="):
			toks = append(toks, token{s: src[i : i+2]})
			i += 2
		case strings.ContainsRune("().,|:", rune(c)):
			toks = append(toks, token{s: src[i : i+1]})
			i++
		case c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9':
			j := i
			for j < len(src) && (src[j] == '_' || src[j] == '-' || src[j] >= 'a' && src[j] <= 'z' || src[j] >= 'A' && src[j] <= 'Z' || src[j] >= '0' && src[j] <= '9') {
				j++
			}
			toks = append(toks, token{s: src[i:j]})
			i = j
		default:
			return nil, fmt.Errorf("unexpected %q in %q", c, src)
		}
	}
	return toks, nil
}

type eparser struct {
	toks []token
	i    int
}

func (p *eparser) peek(s string) bool {
	return p.i < len(p.toks) && !p.toks[p.i].quoted && p.toks[p.i].s == s
}

func (p *eparser) expect(s string) error {
	if !p.peek(s) {
		return fmt.Errorf("expected %q", s)
	}
	p.i++
	return nil
}

func (p *eparser) or() (*expr, error) {
	return p.binary("or", p.and)
}

func (p *eparser) and() (*expr, error) {
	return p.binary("and", p.not)
}

func (p *eparser) binary(op string, next func() (*expr, error)) (*expr, error) {
	l, err := next()
	if err != nil {
		return nil, err
	}
	for p.peek(op) {
		p.i++
		r, err := next()
		if err != nil {
			return nil, err
		}
		l = &expr{op: op, args: []*expr{l, r}}
	}
	return l, nil
}

func (p *eparser) not() (*expr, error) {
	if p.peek("not") {
		p.i++
		e, err := p.not()
		if err != nil {
			return nil, err
		}
		return &expr{op: "not", args: []*expr{e}}, nil
	}
	l, err := p.filtered()
	if err != nil {
		return nil, err
	}
	if p.peek("==") || p.peek("!=") {
		op := p.toks[p.i].s
		p.i++
		r, err := p.filtered()
		if err != nil {
			return nil, err
		}
		return &expr{op: op, args: []*expr{l, r}}, nil
	}
	return l, nil
}

func (p *eparser) filtered() (*expr, error) {
	e, err := p.primary()
	if err != nil {
		return nil, err
	}
	for p.peek("|") {
		p.i++
		if !p.peek("default") {
			return nil, fmt.Errorf("only the default filter is supported")
		}
		p.i++
		if err := p.expect(":"); err != nil {
			return nil, err
		}
		arg, err := p.primary()
		if err != nil {
			return nil, err
		}
		e = &expr{op: "default", args: []*expr{e, arg}}
	}
	return e, nil
}

func (p *eparser) primary() (*expr, error) {
	if p.i >= len(p.toks) {
		return nil, fmt.Errorf("expression ends early")
	}
	t := p.toks[p.i]
	p.i++
	switch {
	case t.quoted:
		return &expr{op: "lit", val: t.s}, nil
	case t.s == "(":
		e, err := p.or()
		if err != nil {
			return nil, err
		}
		return e, p.expect(")")
	case t.s == "true" || t.s == "True":
		return &expr{op: "lit", val: true}, nil
	case t.s == "false" || t.s == "False":
		return &expr{op: "lit", val: false}, nil
	case t.s[0] >= '0' && t.s[0] <= '9' || t.s[0] == '-':
		return &expr{op: "lit", val: t.s}, nil
	case t.s == "config_get":
		if err := p.expect("("); err != nil {
			return nil, err
		}
		e := &expr{op: "call"}
		for !p.peek(")") {
			a, err := p.or()
			if err != nil {
				return nil, err
			}
			e.args = append(e.args, a)
			if !p.peek(",") {
				break
			}
			p.i++
		}
		if len(e.args) < 1 || len(e.args) > 2 {
			return nil, fmt.Errorf("config_get takes a key and a default")
		}
		return e, p.expect(")")
	case strings.ContainsRune("().,|:=!", rune(t.s[0])):
		return nil, fmt.Errorf("unexpected %q", t.s)
	}
	e := &expr{op: "var", path: []string{t.s}}
	for p.peek(".") {
		p.i++
		if p.i >= len(p.toks) || p.toks[p.i].quoted {
			return nil, fmt.Errorf("a name must follow '.'")
		}
		e.path = append(e.path, p.toks[p.i].s)
		p.i++
	}
	return e, nil
}
