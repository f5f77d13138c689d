package engine

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"
)

// canonicalFields is a managedFields entry's field set (FieldsV1 JSON) in the canonical
// encoding encoding/json gives it once decoded (objects' keys sorted, strings escaped as it
// escapes them), false when it is not JSON. A field set is objects all the way down, their keys
// the fields' names and keys: those are re-encoded directly, a plan's fingerprints being one
// per object; anything else takes the decode and encode themselves.
func canonicalFields(raw []byte) ([]byte, bool) {
	// Most often the API server has written it canonically already.
	if c := (fieldsParser{in: raw}); c.canonicalObject() && c.i == len(raw) {
		return raw, true
	}
	p := fieldsParser{in: raw}
	p.space()
	if out, ok := p.object(make([]byte, 0, len(raw))); ok {
		p.space()
		if p.i == len(p.in) {
			return out, true
		}
	}
	var set any
	if err := json.Unmarshal(raw, &set); err != nil {
		return nil, false
	}
	canonical, err := json.Marshal(set) // map keys sorted
	return canonical, err == nil
}

// fieldsParser reads a field set whose values are all objects (false: it is not one, or
// holds what it does not re-encode exactly).
type fieldsParser struct {
	in []byte
	i  int
}

func (p *fieldsParser) space() {
	for p.i < len(p.in) && (p.in[p.i] == ' ' || p.in[p.i] == '\t' || p.in[p.i] == '\n' || p.in[p.i] == '\r') {
		p.i++
	}
}

// canonicalObject reports whether the object at p.i is written as it would be re-encoded: no
// space, keys in order and each written as encoding/json writes it.
func (p *fieldsParser) canonicalObject() bool {
	if p.i >= len(p.in) || p.in[p.i] != '{' {
		return false
	}
	p.i++
	if p.i < len(p.in) && p.in[p.i] == '}' {
		p.i++
		return true
	}
	var prev []byte
	for first := true; ; first = false {
		start := p.i
		key, ok := p.key()
		if !ok || !canonicalKey(p.in[start:p.i]) || (!first && bytes.Compare(key, prev) <= 0) {
			return false
		}
		prev = key
		if p.i >= len(p.in) || p.in[p.i] != ':' {
			return false
		}
		p.i++
		if !p.canonicalObject() || p.i >= len(p.in) {
			return false
		}
		switch p.in[p.i] {
		case '}':
			p.i++
			return true
		case ',':
			p.i++
		default:
			return false
		}
	}
}

// canonicalKey reports whether a key's token is written as encoding/json writes its string:
// printable ASCII but for HTML's <, > and &, with \" and \\ its only escapes (key has checked
// those).
func canonicalKey(token []byte) bool {
	for _, c := range token {
		if c < 0x20 || c >= utf8.RuneSelf || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// member is one key of an object with its value, encoded.
type member struct {
	key     string
	encoded []byte
}

// object appends the canonical encoding of the object at p.i to out.
func (p *fieldsParser) object(out []byte) ([]byte, bool) {
	if p.i >= len(p.in) || p.in[p.i] != '{' {
		return nil, false
	}
	p.i++
	p.space()
	if p.i < len(p.in) && p.in[p.i] == '}' {
		p.i++
		return append(out, '{', '}'), true
	}
	var members []member
	for {
		p.space()
		key, ok := p.key()
		if !ok {
			return nil, false
		}
		p.space()
		if p.i >= len(p.in) || p.in[p.i] != ':' {
			return nil, false
		}
		p.i++
		p.space()
		value, ok := p.object(nil)
		if !ok {
			return nil, false
		}
		members = append(members, member{key: string(key), encoded: value})
		p.space()
		if p.i >= len(p.in) {
			return nil, false
		}
		if p.in[p.i] == '}' {
			p.i++
			break
		}
		if p.in[p.i] != ',' {
			return nil, false
		}
		p.i++
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	out = append(out, '{')
	for j, m := range members {
		if j > 0 {
			if members[j-1].key == m.key {
				return nil, false // a repeated key: the decode keeps the last
			}
			out = append(out, ',')
		}
		out = appendKey(out, m.key)
		out = append(out, ':')
		out = append(out, m.encoded...)
	}
	return append(out, '}'), true
}

// key reads a string at p.i whose only escapes are \" and \\ and that is valid UTF-8 without
// control characters, and returns it decoded (a part of the input when it has no escape).
func (p *fieldsParser) key() ([]byte, bool) {
	if p.i >= len(p.in) || p.in[p.i] != '"' {
		return nil, false
	}
	p.i++
	start := p.i
	var b []byte // set once an escape is met
	for p.i < len(p.in) {
		c := p.in[p.i]
		switch {
		case c == '"':
			s := p.in[start:p.i]
			p.i++
			if b != nil {
				s = append(b, s...)
			}
			if !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\':
			if p.i+1 >= len(p.in) || (p.in[p.i+1] != '"' && p.in[p.i+1] != '\\') {
				return nil, false
			}
			b = append(append(b, p.in[start:p.i]...), p.in[p.i+1])
			p.i += 2
			start = p.i
		case c < 0x20:
			return nil, false
		default:
			p.i++
		}
	}
	return nil, false
}

// appendKey appends s as encoding/json writes a string: printable ASCII as it is but for the
// escaped \", \\ and HTML's <, > and &; any other string is written by encoding/json itself.
func appendKey(out []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf {
			enc, _ := json.Marshal(s)
			return append(out, enc...)
		}
	}
	out = append(out, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '"', '\\':
			out = append(out, '\\', c)
		case '<', '>', '&':
			out = append(out, `\u00`...)
			out = append(out, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xF])
		default:
			out = append(out, c)
		}
	}
	return append(out, '"')
}
