package config

import (
	"fmt"
	"path/filepath"
)

// GPIO backends a gpio channel may use.
const (
	GPIOBackendCDev  = "cdev"  // the GPIO character device, /dev/gpiochipN (Linux ≥ 5.10)
	GPIOBackendSysfs = "sysfs" // the legacy /sys/class/gpio interface
)

// GPIOParams are the parameters of a gpio channel: S points are input lines, C
// points output lines; a point's reverse makes the line active-low.
type GPIOParams struct {
	Acquisition `yaml:",inline"`

	// Backend is cdev (default) or sysfs.
	Backend string `yaml:"backend"`
	// SysfsRoot is the sysfs GPIO folder. Default /sys/class/gpio.
	SysfsRoot string `yaml:"sysfs_root"`
	// Consumer is the label the cdev backend gives the lines it requests. Default comsrv.
	Consumer string `yaml:"consumer"`
}

// Validate checks the parameters and fills in defaults.
func (p *GPIOParams) Validate() error {
	if err := p.Acquisition.Validate(); err != nil {
		return err
	}
	switch p.Backend {
	case "":
		p.Backend = GPIOBackendCDev
	case GPIOBackendCDev, GPIOBackendSysfs:
	default:
		return fmt.Errorf("backend %q: want cdev or sysfs", p.Backend)
	}
	if p.SysfsRoot == "" {
		p.SysfsRoot = "/sys/class/gpio"
	}
	p.SysfsRoot = filepath.Clean(p.SysfsRoot)
	if p.Consumer == "" {
		p.Consumer = "comsrv"
	}
	return nil
}
