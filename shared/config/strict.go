package config

import (
	"bytes"
	"errors"
	"io"

	"github.com/goccy/go-yaml"
)

// DecodeStrict decodes one YAML document into dst the way every config file of the
// project is read: unknown and duplicate keys are errors, and a problem comes back
// positioned in path. A document with nothing but comments leaves dst unchanged.
// Files outside a site folder (the cloud hub's cloud.yaml) use it too.
func DecodeStrict(path string, src []byte, dst any) *PosError {
	err := GuardYAML(func() error {
		return yaml.NewDecoder(bytes.NewReader(src), yaml.Strict()).Decode(dst)
	})
	if err != nil && !errors.Is(err, io.EOF) {
		return yamlError(path, "", err)
	}
	return nil
}
