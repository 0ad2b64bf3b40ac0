package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/voltageems/voltage/shared/point"
)

// Load reads and validates the site folder dir (DESIGN §3). On any error it returns
// a *LoadError listing every problem found, each a *PosError naming file, line and
// column, and no Config: a service never starts on part of its configuration.
//
// Paths in errors are dir joined with the file, as given ("config/site.yaml").
func Load(dir string) (*Config, error) {
	l := &errList{}
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		l.errs = append(l.errs, &PosError{Pos: Position{File: dir}, Msg: "site folder does not exist", err: err})
		return nil, &LoadError{Dir: dir, Errors: l.errs}
	} else if err != nil {
		l.addErr(Position{File: dir}, "site folder", err)
		return nil, &LoadError{Dir: dir, Errors: l.errs}
	} else if !fi.IsDir() {
		l.add(Position{File: dir}, "site folder: not a directory")
		return nil, &LoadError{Dir: dir, Errors: l.errs}
	}

	cfg := &Config{Dir: dir}
	sitePath := filepath.Join(dir, "site.yaml")
	switch src, state := readFile(sitePath, l); state {
	case fileOK:
		cfg.Site = loadSite(sitePath, src, l)
	case fileAbsent:
		l.add(Position{File: sitePath}, "missing; every site folder needs a site.yaml with at least site.id")
	}

	chPath := ChannelsFile(dir)
	var entries []channelEntry
	if src, state := readFile(chPath, l); state == fileOK {
		entries = loadChannels(chPath, src, l)
	}
	for _, e := range entries {
		ch := e.ch
		ch.Points = map[point.Type][]Point{}
		if e.tables {
			loadPointTables(filepath.Join(dir, "comsrv", uitoa(ch.ID)), &ch, l)
		}
		cfg.Channels = append(cfg.Channels, ch)
	}

	if l.len() > 0 {
		return nil, &LoadError{Dir: dir, Errors: l.sorted()}
	}
	cfg.buildIndex()
	return cfg, nil
}

// loadPointTables reads the channel's four point tables and, for a Modbus channel,
// their mappings. Every table is optional; a Modbus channel's points must all be
// mapped.
func loadPointTables(chDir string, ch *Channel, l *errList) {
	for _, typ := range point.Types {
		path := filepath.Join(chDir, typ.Name()+".csv")
		pt := pointTable{path: path}
		switch src, state := readFile(path, l); state {
		case fileOK:
			pt = parsePointTable(path, typ, src, l)
		case fileError:
			pt.broken = true
		}
		// Other protocols' mappings (IEC 104, CAN) are read by their own loaders.
		if isModbus(ch.Protocol) {
			mpath := filepath.Join(chDir, "mapping", typ.Name()+"_mapping.csv")
			mt := modbusTable{path: mpath}
			switch src, state := readFile(mpath, l); state {
			case fileOK:
				mt = parseModbusMapping(mpath, typ, src, addressBase(ch), l)
			case fileAbsent:
				mt.absent = true
			case fileError:
				mt.broken = true
			}
			joinModbus(&pt, &mt, l)
		}
		if ch.Protocol == ProtocolIEC104 {
			loadIEC104Mapping(chDir, typ, &pt, l)
		}
		loadProtocolMapping(ch, chDir, typ, &pt, l) // can and gpio (canmapping.go)
		if len(pt.points) > 0 {
			ch.Points[typ] = pt.points
		}
	}
}

// addressBase is the channel's address_base parameter: 1 when its mapping tables
// number registers from 1. Anything else counts as 0 here; the driver, which owns
// the parameter, rejects values other than 0 and 1.
func addressBase(ch *Channel) uint16 {
	switch v := ch.Parameters["address_base"].(type) {
	case uint64:
		if v == 1 {
			return 1
		}
	case int64:
		if v == 1 {
			return 1
		}
	}
	return 0
}

type fileState int

const (
	fileOK fileState = iota
	fileAbsent
	fileError // reported to l
)

func readFile(path string, l *errList) ([]byte, fileState) {
	src, err := os.ReadFile(path)
	switch {
	case err == nil:
		return src, fileOK
	case errors.Is(err, fs.ErrNotExist):
		return nil, fileAbsent
	}
	l.addErr(Position{File: path}, "read", err)
	return nil, fileError
}

// Channel returns the channel with the id, or nil.
func (c *Config) Channel(id uint32) *Channel {
	if c == nil {
		return nil
	}
	// The index is built by Load; a Config assembled or grown by hand is scanned.
	if len(c.channelIndex) == len(c.Channels) {
		if i, ok := c.channelIndex[id]; ok && c.Channels[i].ID == id {
			return &c.Channels[i]
		}
		if c.channelIndex != nil {
			return nil
		}
	}
	for i := range c.Channels {
		if c.Channels[i].ID == id {
			return &c.Channels[i]
		}
	}
	return nil
}

// Point returns the point of type t with the id, or nil.
func (c *Channel) Point(t point.Type, id point.ID) *Point {
	if c == nil {
		return nil
	}
	pts := c.Points[t]
	if idx, ok := c.pointIndex[t]; ok && len(idx) == len(pts) {
		if i, ok := idx[id]; ok && pts[i].ID == id {
			return &pts[i]
		}
		return nil
	}
	for i := range pts {
		if pts[i].ID == id {
			return &pts[i]
		}
	}
	return nil
}

func (c *Config) buildIndex() {
	c.channelIndex = make(map[uint32]int, len(c.Channels))
	for i := range c.Channels {
		ch := &c.Channels[i]
		c.channelIndex[ch.ID] = i
		ch.pointIndex = make(map[point.Type]map[point.ID]int, len(ch.Points))
		for t, pts := range ch.Points {
			idx := make(map[point.ID]int, len(pts))
			for j, p := range pts {
				idx[p.ID] = j
			}
			ch.pointIndex[t] = idx
		}
	}
}

// ChannelsFile is the path of comsrv's channel list in the site folder dir.
func ChannelsFile(dir string) string { return filepath.Join(dir, "comsrv", "channels.yaml") }
