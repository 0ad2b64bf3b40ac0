package netsrv

import (
	"path/filepath"
	"testing"

	"github.com/voltageems/voltage/shared/spool"
)

// A crash between the spool intent and the watermark: the records tell whether the
// append happened, so entries already spooled are not sent twice and entries not
// spooled are not lost.
func TestRecoverWatermarkAfterCrashInTheWindow(t *testing.T) {
	for _, appended := range []bool{true, false} {
		dir := t.TempDir()
		sp, err := spool.Open(spool.Options{Dir: dir})
		if err != nil {
			t.Fatal(err)
		}
		wm := filepath.Join(dir, "spooled-through")
		old, _ := parseStreamID("100-0")
		high, _ := parseStreamID("200-3")
		if err := writeWatermark(wm, old); err != nil {
			t.Fatal(err)
		}
		if err := writeWatermark(wm+".intent", high); err != nil {
			t.Fatal(err)
		}
		if appended {
			if err := sp.Append([]byte(`{"p":"e30=","n":1,"h":"150-0"}`), []byte(`{"p":"e30=","n":1,"h":"200-3"}`)); err != nil {
				t.Fatal(err)
			}
		}
		got, err := recoverWatermark(sp, wm)
		if err != nil {
			t.Fatal(err)
		}
		want := old
		if appended {
			want = high
		}
		if got != want {
			t.Errorf("appended=%v: watermark %v, want %v", appended, got, want)
		}
		// Recovered once, it is durable.
		again, err := readWatermark(wm)
		if err != nil || again != want {
			t.Errorf("appended=%v: stored watermark %v, %v", appended, again, err)
		}
		sp.Close()
	}
}
