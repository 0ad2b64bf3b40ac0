package alarmsrv

import (
	"errors"
	"fmt"
)

var errNotFound = errors.New("no such alarm")

type conflictError struct{ msg string }

func (e *conflictError) Error() string { return e.msg }

func errConflict(format string, args ...any) error {
	return &conflictError{msg: fmt.Sprintf(format, args...)}
}
