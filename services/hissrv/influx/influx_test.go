package influx

import (
	"testing"

	"github.com/voltageems/voltage/services/hissrv/sample"
	"github.com/voltageems/voltage/shared/point"
)

func TestLineProtocol(t *testing.T) {
	b := New(Options{Name: "influx-x", URL: "http://127.0.0.1:1", Site: "site a,b=c"})
	defer b.Close()
	cases := []struct {
		s    sample.Sample
		want string
	}{
		{sample.Sample{Point: sample.Point{ID: 1, Family: "T", Field: "5"}, TS: 1732573200123, Value: 229.6},
			`voltage_point,site=site\ a\,b\=c,channel=1,point=5,type=T value=229.6,quality=0i 1732573200123`},
		{sample.Sample{Point: sample.Point{Instance: true, ID: 3, Family: "M", Field: "p v=1"}, TS: 5, Value: -1e21, Quality: point.CommLost},
			`voltage_point,site=site\ a\,b\=c,instance=3,point=p\ v\=1,type=M value=-1e+21,quality=3i 5`},
	}
	for _, c := range cases {
		if got := b.Line(&c.s); got != c.want {
			t.Errorf("got  %s\nwant %s", got, c.want)
		}
	}
}
