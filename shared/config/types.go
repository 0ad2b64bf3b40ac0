// Package config loads a site's configuration folder (DESIGN §3): site.yaml,
// comsrv/channels.yaml and the per-channel point tables and protocol mappings.
//
// Files are the source of truth. Loading is all or nothing: every error found is
// reported with file, line and column, unknown keys and duplicate ids are errors, and
// a caller gets either a complete, valid Config or no Config at all.
package config

import (
	"github.com/voltageems/voltage/shared/modbusmap"
	"github.com/voltageems/voltage/shared/point"
)

// Config is everything loaded from one site folder.
type Config struct {
	Dir      string    // the folder it was loaded from
	Site     Site      // site.yaml
	Channels []Channel // comsrv/channels.yaml, with point tables and mappings

	channelIndex map[uint32]int // channel id → index in Channels, built by Load
}

// Site is site.yaml.
type Site struct {
	Site    SiteInfo          `yaml:"site"`
	Redis   Redis             `yaml:"redis"`
	NATS    NATS              `yaml:"nats"`
	Listen  map[string]string `yaml:"listen"` // service name → HTTP listen address, e.g. comsrv: 127.0.0.1:6001
	Logging Logging           `yaml:"logging"`
}

// SiteInfo names the site.
type SiteInfo struct {
	ID   string `yaml:"id"`
	Name string `yaml:"name"`
}

// Redis is the site's state store.
type Redis struct {
	URL string `yaml:"url"` // default redis://127.0.0.1:6379/0
	// ChangesMaxLen caps voltage:changes (approximate trimming). Default 1,000,000.
	ChangesMaxLen int64 `yaml:"changes_maxlen"`
}

// NATS is the site's NATS connection (leaf node of the cloud hub).
type NATS struct {
	URL         string  `yaml:"url"`
	LeafRemote  string  `yaml:"leaf_remote"`
	Credentials string  `yaml:"credentials"`
	TLS         NATSTLS `yaml:"tls"` // TLS of the leaf link to the hub
}

// NATSTLS is the TLS of the leaf link: the CA that signed the hub's certificate
// (default: the system's roots) and, when the hub verifies its sites, this
// site's client certificate and key.
type NATSTLS struct {
	CAFile   string `yaml:"ca_file"`
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
}

// Logging sets the default log level and format; flags override them.
type Logging struct {
	Level  string `yaml:"level"`  // debug | info | warn | error
	Format string `yaml:"format"` // text | json
}

// Protocol names accepted in channels.yaml.
const (
	ProtocolModbusTCP        = "modbus_tcp"
	ProtocolModbusRTU        = "modbus_rtu"
	ProtocolModbusRTUOverTCP = "modbus_rtu_over_tcp"
	ProtocolIEC104           = "iec104"
	ProtocolCAN              = "can"
	ProtocolGPIO             = "gpio"
	ProtocolVirtual          = "virtual"
)

// Channel is one entry of comsrv/channels.yaml with its point tables.
type Channel struct {
	ID          uint32 `yaml:"id"`
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Protocol    string `yaml:"protocol"`
	Enabled     bool   `yaml:"enabled"` // a channel without the key is enabled

	// Parameters are protocol specific; a driver decodes them with DecodeParameters
	// into its own struct, which rejects unknown keys with their position.
	Parameters map[string]any `yaml:"parameters"`

	// Points holds the four point tables, by type. A missing CSV is an empty table.
	Points map[point.Type][]Point `yaml:"-"`

	params     paramsSource                    // where Parameters came from, for positioned errors
	pointIndex map[point.Type]map[point.ID]int // point id → index in Points[type], built by Load
}

// Point is one row of a point table, joined with its protocol mapping.
type Point struct {
	ID          point.ID
	Type        point.Type
	Name        string // signal_name
	Scale       float64
	Offset      float64
	Unit        string
	Reverse     bool
	DataType    string // type of the engineering value: bool, int, float, ... as written ("" when not given)
	Description string

	// Adjustment limits (adjustment tables only); nil when not given.
	Min, Max, Step *float64

	// Control options (control tables only).
	ControlType     string   // "" | momentary | latching | pulse
	OnValue         *float64 // raw value written for "on"
	OffValue        *float64 // raw value written for "off"
	PulseDurationMS int

	Modbus *ModbusMapping // set for Modbus channels; every point of a Modbus channel has one
	IEC104 *IEC104Mapping // set for iec104 channels; every point of an iec104 channel has one
	CAN    *CANMapping    // set for can channels with a mapping row (else the DBC names the signal)
	GPIO   *GPIOMapping   // set for gpio channels

	Pos Position // the point table row
}

// ModbusMapping is one row of mapping/{type}_mapping.csv of a Modbus channel.
type ModbusMapping struct {
	SlaveID      uint8
	FunctionCode uint8 // the read function code: 1, 2, 3 or 4 (writes use 5/6/15/16)
	// WriteFunctionCode is the write code the row named (5, 6, 15 or 16) for a C/A
	// point whose device accepts only that one; 0 when the row named the read code
	// and the driver picks (5 or 6 for one coil/register, 15 or 16 for more).
	WriteFunctionCode uint8
	Register          uint16 // as written in the CSV; subtract the channel's address_base
	DataType          modbusmap.DataType
	ByteOrder         modbusmap.ByteOrder
	Bit               int // bit_position inside a register, -1 when not given
	Pos               Position
}

// Position is a place in a config file.
type Position struct {
	File   string
	Line   int
	Column int
}
