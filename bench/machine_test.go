package bench

import (
	"bytes"
	"errors"
	"os"
	"strconv"
	"time"
)

// machineStat is what the whole machine did up to a moment, from Linux's
// /proc: CPU busy in any process, and bytes written to its disks. A
// benchmark's samples mean little without it on a shared machine.
type machineStat struct {
	busy    time.Duration // user, nice, system, irq and softirq time of every CPU
	written int64         // bytes written to whole disks (not partitions)
}

// readMachine reads /proc/stat and /proc/diskstats.
func readMachine() (machineStat, error) {
	var m machineStat
	stat, err := os.ReadFile("/proc/stat")
	if err != nil {
		return m, err
	}
	line, _, _ := bytes.Cut(stat, []byte("\n"))
	f := bytes.Fields(line)
	if len(f) < 8 || string(f[0]) != "cpu" {
		return m, errors.New("no cpu line at the top of /proc/stat")
	}
	var ticks int64
	for _, k := range []int{1, 2, 3, 6, 7} { // user nice system irq softirq
		v, err := strconv.ParseInt(string(f[k]), 10, 64)
		if err != nil {
			return m, err
		}
		ticks += v
	}
	m.busy = time.Duration(ticks) * time.Second / 100 // USER_HZ is 100 on Linux
	disks, err := os.ReadFile("/proc/diskstats")
	if err != nil {
		return m, err
	}
	for _, line := range bytes.Split(disks, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 10 {
			continue
		}
		if _, err := os.Stat("/sys/block/" + string(f[2])); err != nil {
			continue // a partition, counted in its disk
		}
		sectors, err := strconv.ParseInt(string(f[9]), 10, 64)
		if err != nil {
			return m, err
		}
		m.written += sectors * 512
	}
	return m, nil
}

// machineMeter measures, over a phase, the cores that other processes used
// and the rate of disk writes.
type machineMeter struct {
	ok   bool
	m0   machineStat
	cpu0 time.Duration
	t0   time.Time
}

func startMachine() machineMeter {
	m, err := readMachine()
	return machineMeter{ok: err == nil, m0: m, cpu0: processCPU(), t0: time.Now()}
}

// phaseLoad is what the machine did during a phase besides this process's work.
type phaseLoad struct {
	ok       bool
	others   float64 // cores busy in other processes, on average
	diskMBps float64 // MB/s written to the disks, by anyone
}

func (mm machineMeter) stop() phaseLoad {
	m, err := readMachine()
	if !mm.ok || err != nil {
		return phaseLoad{}
	}
	d := time.Since(mm.t0).Seconds()
	own := (processCPU() - mm.cpu0).Seconds()
	return phaseLoad{
		ok:       true,
		others:   max(0, ((m.busy-mm.m0.busy).Seconds()-own)/d),
		diskMBps: float64(m.written-mm.m0.written) / mb / d,
	}
}
