//go:build !unix

package bench

import "time"

// processCPU is not measured here: getrusage is a Unix call, and the
// benchmark then leaves out charla-cpu-us/delivery.
func processCPU() time.Duration { return 0 }
