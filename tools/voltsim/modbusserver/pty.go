package modbusserver

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// PTY is a pseudo-terminal pair standing in for a serial cable: a client opens
// SlavePath as its serial port, the simulated devices serve on Master. The pair
// keeps a descriptor of its own on the slave side, so that the master keeps
// working while a client closes and reopens the port (a master whose slave side is
// closed everywhere reads EIO).
type PTY struct {
	Master    *os.File
	SlavePath string
	hold      *os.File
}

// OpenPTY opens a new pseudo-terminal pair through /dev/ptmx with the slave side in
// raw mode (no echo, no line editing), as a serial port is.
func OpenPTY() (*PTY, error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		return nil, fmt.Errorf("open /dev/ptmx: %w", err)
	}
	var n uint32
	var ioctlErr error
	raw, err := m.SyscallConn()
	if err == nil {
		err = raw.Control(func(fd uintptr) {
			if ioctlErr = unix.IoctlSetPointerInt(int(fd), unix.TIOCSPTLCK, 0); ioctlErr != nil {
				ioctlErr = fmt.Errorf("unlock pty: %w", ioctlErr)
				return
			}
			if n, ioctlErr = unix.IoctlGetUint32(int(fd), unix.TIOCGPTN); ioctlErr != nil {
				ioctlErr = fmt.Errorf("pty number: %w", ioctlErr)
			}
		})
	}
	if err = firstErr(err, ioctlErr); err != nil {
		_ = m.Close()
		return nil, err
	}
	path := fmt.Sprintf("/dev/pts/%d", n)
	s, err := os.OpenFile(path, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		_ = m.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := makeRaw(s); err != nil {
		_ = m.Close()
		_ = s.Close()
		return nil, fmt.Errorf("raw mode on %s: %w", path, err)
	}
	return &PTY{Master: m, SlavePath: path, hold: s}, nil
}

// Close closes both sides.
func (p *PTY) Close() error {
	return firstErr(p.Master.Close(), p.hold.Close())
}

func makeRaw(f *os.File) error {
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var terr error
	err = raw.Control(func(fd uintptr) {
		t, err := unix.IoctlGetTermios(int(fd), unix.TCGETS)
		if err != nil {
			terr = err
			return
		}
		// cfmakeraw
		t.Iflag &^= unix.IGNBRK | unix.BRKINT | unix.PARMRK | unix.ISTRIP | unix.INLCR | unix.IGNCR | unix.ICRNL | unix.IXON
		t.Oflag &^= unix.OPOST
		t.Lflag &^= unix.ECHO | unix.ECHONL | unix.ICANON | unix.ISIG | unix.IEXTEN
		t.Cflag &^= unix.CSIZE | unix.PARENB
		t.Cflag |= unix.CS8
		t.Cc[unix.VMIN], t.Cc[unix.VTIME] = 1, 0
		terr = unix.IoctlSetTermios(int(fd), unix.TCSETS, t)
	})
	return firstErr(err, terr)
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
