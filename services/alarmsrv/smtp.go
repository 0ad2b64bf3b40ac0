package alarmsrv

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/smtp"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"time"
)

// mailer sends notifications as e-mail over SMTP: STARTTLS (required unless
// starttls: false) and AUTH PLAIN when a username is set.
type mailer struct {
	c        *Channel
	addr     string
	tls      *tls.Config
	password string
	timeout  time.Duration
}

func newMailer(c *Channel) (*mailer, error) {
	s := c.Doc.SMTP
	m := &mailer{c: c, addr: net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), password: s.Password, timeout: c.timeout}
	if s.PasswordEnv != "" {
		m.password = os.Getenv(s.PasswordEnv)
	}
	if m.timeout <= 0 {
		m.timeout = 15 * time.Second
	}
	if s.StartTLS == nil || *s.StartTLS {
		m.tls = &tls.Config{ServerName: s.Host, InsecureSkipVerify: s.InsecureSkipVerify, MinVersion: tls.VersionTLS12} //nolint:gosec // opt-in for self-signed relays
		if s.CAFile != "" {
			pem, err := os.ReadFile(s.CAFile)
			if err != nil {
				return nil, fmt.Errorf("smtp ca_file: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("smtp ca_file %s: no certificate", s.CAFile)
			}
			m.tls.RootCAs = pool
		}
	}
	return m, nil
}

func (m *mailer) send(ctx context.Context, n Notification) error {
	ctx, cancel := context.WithTimeout(ctx, m.timeout)
	defer cancel()
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", m.addr)
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.addr, err)
	}
	stop := context.AfterFunc(ctx, func() { _ = conn.Close() })
	defer stop()
	dl, _ := ctx.Deadline()
	_ = conn.SetDeadline(dl)
	err = m.session(conn, n)
	var te *textproto.Error
	if errors.As(err, &te) && te.Code >= 500 {
		return &permanentError{fmt.Errorf("smtp %s: %w", m.addr, err)}
	}
	if err != nil {
		return fmt.Errorf("smtp %s: %w", m.addr, err)
	}
	return nil
}

func (m *mailer) session(conn net.Conn, n Notification) error {
	s := m.c.Doc.SMTP
	c, err := smtp.NewClient(conn, s.Host)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Hello("alarmsrv"); err != nil {
		return err
	}
	if m.tls != nil {
		if ok, _ := c.Extension("STARTTLS"); !ok {
			return errors.New("the server does not offer STARTTLS (set starttls: false to send in the clear)")
		}
		if err := c.StartTLS(m.tls); err != nil {
			return fmt.Errorf("starttls: %w", err)
		}
	}
	if s.Username != "" {
		if err := c.Auth(smtp.PlainAuth("", s.Username, m.password, s.Host)); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	if err := c.Mail(s.From); err != nil {
		return err
	}
	for _, to := range m.c.Doc.To {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(mailBody(s.From, m.c.Doc.To, n)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	return c.Quit()
}

// mailBody renders the message: plain text, one header per line, CRLF endings.
func mailBody(from string, to []string, n Notification) []byte {
	clean := func(s string) string { return strings.NewReplacer("\r", " ", "\n", " ").Replace(s) }
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\n", from)
	fmt.Fprintf(&b, "To: %s\r\n", strings.Join(to, ", "))
	fmt.Fprintf(&b, "Subject: %s\r\n", clean("["+n.Site+"] "+n.Title))
	fmt.Fprintf(&b, "Date: %s\r\n", time.UnixMilli(n.TS).UTC().Format(time.RFC1123Z))
	if n.Delivery != "" {
		fmt.Fprintf(&b, "Message-ID: <%s.%s@alarmsrv>\r\n", clean(n.Delivery), clean(n.Site))
	}
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	lines := []string{n.Message, "", "Site: " + n.Site, "Event: " + n.Event, "Severity: " + n.Severity}
	if n.Instance != "" {
		lines = append(lines, "Instance: "+n.Instance)
	}
	if n.Source != "" {
		lines = append(lines, "Source: "+n.Source)
	}
	lines = append(lines, "Time: "+time.UnixMilli(n.TS).UTC().Format(time.RFC3339))
	for _, l := range lines {
		l = strings.ReplaceAll(strings.ReplaceAll(l, "\r", ""), "\n", "\r\n")
		b.WriteString(l + "\r\n")
	}
	return []byte(b.String())
}
