package config

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
	"github.com/goccy/go-yaml/token"
)

// SetChannelEnabled returns channels.yaml's source with the enabled key of channel
// id set to on. Only that value changes (or one key is added): comments, order and
// style stay as the engineer wrote them, so the file stays reviewable.
func SetChannelEnabled(src []byte, id uint32, on bool) ([]byte, error) {
	var out []byte
	err := GuardYAML(func() error {
		var err error
		out, err = setChannelEnabled(src, id, on)
		return err
	})
	return out, err
}

func setChannelEnabled(src []byte, id uint32, on bool) ([]byte, error) {
	f, err := parser.ParseBytes(src, parser.ParseComments)
	if err != nil {
		return nil, fmt.Errorf("parse channels: %w", err)
	}
	item := findChannel(f, id)
	if item == nil {
		return nil, fmt.Errorf("channel %d is not in the file", id)
	}
	value := strconv.FormatBool(on)
	var idValue ast.Node
	for _, kv := range item.Values {
		switch kv.Key.String() {
		case "enabled":
			start, ok := offsetOf(src, kv.Value.GetToken())
			if !ok {
				return nil, fmt.Errorf("channel %d: cannot locate its enabled value", id)
			}
			end := start + len(kv.Value.GetToken().Value)
			return splice(src, start, end, value), nil
		case "id":
			idValue = kv.Value
		}
	}
	// No enabled key yet: add one right after the id, in the item's own style.
	tk := idValue.GetToken()
	start, ok := offsetOf(src, tk)
	if !ok {
		return nil, fmt.Errorf("channel %d: cannot locate its id", id)
	}
	end := start + len(tk.Value)
	if item.IsFlowStyle {
		return splice(src, end, end, ", enabled: "+value), nil
	}
	keyTk := item.Values[0].Key.GetToken()
	for _, kv := range item.Values {
		if kv.Key.String() == "id" {
			keyTk = kv.Key.GetToken()
		}
	}
	indent := keyTk.Position.Column - 1
	// The rest of the id's line (a comment) stays on it.
	for end < len(src) && src[end] != '\n' {
		end++
	}
	line := "\n" + strings.Repeat(" ", indent) + "enabled: " + value
	return splice(src, end, end, line), nil
}

// findChannel returns the mapping of the channels list entry whose id is id.
func findChannel(f *ast.File, id uint32) *ast.MappingNode {
	want := strconv.FormatUint(uint64(id), 10)
	for _, doc := range f.Docs {
		root, ok := doc.Body.(*ast.MappingNode)
		if !ok {
			if mv, isMV := doc.Body.(*ast.MappingValueNode); isMV {
				root = &ast.MappingNode{Values: []*ast.MappingValueNode{mv}}
			} else {
				continue
			}
		}
		for _, kv := range root.Values {
			if kv.Key.String() != "channels" {
				continue
			}
			seq, ok := kv.Value.(*ast.SequenceNode)
			if !ok {
				return nil
			}
			for _, v := range seq.Values {
				m := asMapping(v)
				if m == nil {
					continue
				}
				for _, e := range m.Values {
					if e.Key.String() == "id" && e.Value.GetToken() != nil && e.Value.GetToken().Value == want {
						return m
					}
				}
			}
		}
	}
	return nil
}

func asMapping(n ast.Node) *ast.MappingNode {
	switch m := n.(type) {
	case *ast.MappingNode:
		return m
	case *ast.MappingValueNode:
		return &ast.MappingNode{Values: []*ast.MappingValueNode{m}}
	}
	return nil
}

// offsetOf is the byte offset of a token from its line and column (columns count
// characters).
func offsetOf(src []byte, tk *token.Token) (int, bool) {
	if tk == nil || tk.Position == nil {
		return 0, false
	}
	line, off := 1, 0
	for line < tk.Position.Line {
		i := bytes.IndexByte(src[off:], '\n')
		if i < 0 {
			return 0, false
		}
		off += i + 1
		line++
	}
	for col := 1; col < tk.Position.Column; col++ {
		if off >= len(src) || src[off] == '\n' {
			return 0, false
		}
		_, size := utf8.DecodeRune(src[off:])
		off += size
	}
	if off+len(tk.Value) > len(src) || string(src[off:off+len(tk.Value)]) != tk.Value {
		return 0, false // a quoted or multi-line value: not edited in place
	}
	return off, true
}

func splice(src []byte, start, end int, s string) []byte {
	out := make([]byte, 0, len(src)+len(s))
	out = append(out, src[:start]...)
	out = append(out, s...)
	return append(out, src[end:]...)
}

// WriteFileAtomic replaces path with data: written to a temporary file in the
// same folder, synced and renamed, so a reader or a crash never sees half a file.
// The file keeps its permissions.
func WriteFileAtomic(path string, data []byte) error {
	mode := os.FileMode(0o644)
	if st, err := os.Stat(path); err == nil {
		mode = st.Mode().Perm()
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(tmp.Name()) // after a successful rename there is nothing to remove
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp.Name(), mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
