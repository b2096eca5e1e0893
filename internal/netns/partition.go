package netns

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
)

// partBridge prefixes the bridges Partition adds to the switch namespace:
// part1, part2, …; br0 stays the LAN's own.
const partBridge = "part"

// Partition splits the switch: each group of host indexes gets a bridge of its
// own and its hosts' switch ports move onto it, so hosts of one group still
// see each other (unicast and multicast) and nothing crosses between groups.
// Hosts named in no group stay on the original bridge, together. Cables stay
// plugged in: no host sees its carrier drop, as when an office's uplink
// between two switches fails. A partition already in place is healed first.
func (l *LAN) Partition(groups ...[]int) error {
	seen := make(map[int]bool)
	for _, g := range groups {
		for _, i := range g {
			if i < 0 || i >= len(l.hosts) {
				return fmt.Errorf("partition: no host %d on a LAN of %d", i, len(l.hosts))
			}
			if seen[i] {
				return fmt.Errorf("partition: host %d is in two groups", i)
			}
			seen[i] = true
		}
	}
	if err := l.Heal(); err != nil {
		return err
	}
	for gi, g := range groups {
		br := fmt.Sprintf("%s%d", partBridge, gi+1)
		steps := [][]string{
			// The same dumb switch as br0 (see build).
			{"-n", l.sw, "link", "add", "name", br, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"},
			{"-n", l.sw, "link", "set", "dev", br, "up"},
		}
		for _, i := range g {
			steps = append(steps, []string{"-n", l.sw, "link", "set", "dev", l.hosts[i].port, "master", br})
		}
		if err := ipSteps(steps); err != nil {
			return fmt.Errorf("partition: %w", err)
		}
	}
	return nil
}

// Heal undoes Partition: every host's switch port goes back on the original
// bridge and the bridges Partition added are deleted. Healing a LAN that is
// not partitioned does nothing. A port pulled with Disconnect stays down.
func (l *LAN) Heal() error {
	var steps [][]string
	for _, h := range l.hosts {
		steps = append(steps, []string{"-n", l.sw, "link", "set", "dev", h.port, "master", bridge})
	}
	if err := ipSteps(steps); err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	names, err := l.bridges()
	if err != nil {
		return fmt.Errorf("heal: %w", err)
	}
	for _, name := range names {
		if !strings.HasPrefix(name, partBridge) {
			continue
		}
		if err := ip("-n", l.sw, "link", "del", "dev", name); err != nil {
			return fmt.Errorf("heal: %w", err)
		}
	}
	return nil
}

// bridges lists the names of the bridges in the switch namespace. The LAN
// keeps no record of a partition: the switch namespace is the record.
func (l *LAN) bridges() ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), ipTimeout)
	defer cancel()
	args := []string{"-n", l.sw, "-o", "link", "show", "type", "bridge"}
	out, err := exec.CommandContext(ctx, "ip", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("ip %s: %w", strings.Join(args, " "), err)
	}
	// One line a link: "7: part1: <BROADCAST,…> mtu 1500 …".
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimSuffix(fields[1], ":"), "@")
		names = append(names, name)
	}
	return names, nil
}
