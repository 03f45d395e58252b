package rigs

import (
	"errors"
	"fmt"
	"strconv"
	"sync"

	"periph.io/x/conn/v3/driver/driverreg"
	"periph.io/x/conn/v3/gpio"
	"periph.io/x/host/v3/gpioioctl"

	"github.com/fleetlab/fleetlab/rigs/serial"
)

// PinOut is an output line: a relay's coil, a reset pin. periph's gpio.PinOut satisfies it.
type PinOut interface {
	Out(l gpio.Level) error
}

// PinIn is an input line: a board's status LED or ready pin. periph's gpio.PinIn satisfies it.
type PinIn interface {
	Read() gpio.Level
}

// Ports opens serial ports: a board's console. SystemPorts is the real one; tests give one that hands out
// serialtest ports.
type Ports interface {
	Open(addr string, o serial.Options) (serial.Port, error)
}

// SystemPorts opens ports with package serial: device paths, tcp:// and rfc2217://.
type SystemPorts struct{}

var _ Ports = SystemPorts{}

// Open implements Ports.
func (SystemPorts) Open(addr string, o serial.Options) (serial.Port, error) {
	return serial.Open(addr, o)
}

// GPIO opens GPIO lines by chip and line name or offset.
type GPIO interface {
	Line(chip, line string) (gpio.PinIO, error)
}

// LinuxGPIO opens lines of the Linux GPIO character devices (/dev/gpiochipN) through periph.io's host/v3.
type LinuxGPIO struct {
	once sync.Once
	err  error
}

var _ GPIO = (*LinuxGPIO)(nil)

// ErrNoGPIO is a host without GPIO character devices.
var ErrNoGPIO = errors.New("no GPIO character devices on this host (/dev/gpiochip*)")

// Line implements GPIO.
func (g *LinuxGPIO) Line(chip, line string) (gpio.PinIO, error) {
	g.once.Do(func() {
		if _, err := driverreg.Init(); err != nil {
			g.err = err
		}
	})
	if len(gpioioctl.Chips) == 0 {
		if g.err != nil {
			return nil, fmt.Errorf("gpio %s/%s: %w: %v", chip, line, ErrNoGPIO, g.err)
		}
		return nil, fmt.Errorf("gpio %s/%s: %w", chip, line, ErrNoGPIO)
	}
	var names []string
	for _, c := range gpioioctl.Chips {
		names = append(names, c.Name())
		if c.Name() != chip && c.Label() != chip && c.Path() != chip {
			continue
		}
		var l *gpioioctl.GPIOLine
		if n, err := strconv.Atoi(line); err == nil {
			l = c.ByNumber(n)
		} else {
			l = c.ByName(line)
		}
		if l == nil {
			return nil, fmt.Errorf("gpio %s: no line %q (the chip has %d lines)", chip, line, c.LineCount())
		}
		return l, nil
	}
	return nil, fmt.Errorf("gpio: no chip %q (have %v)", chip, names)
}

// level returns the level that makes a line active or not.
func level(active, activeLow bool) gpio.Level {
	return gpio.Level(active != activeLow)
}
