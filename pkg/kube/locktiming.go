package kube

import "time"

// LockTiming paces the app's lock. Duration is how long the Lease outlives a holder that
// stopped renewing it (killed, or cut off from the API server); the holder renews every
// RetryPeriod and stops writing once its renewals have failed for RenewDeadline. RenewDeadline
// is shorter than Duration, so a holder has stopped before anyone else may take over; the
// difference absorbs clock skew between the runs and requests still in flight.
type LockTiming struct {
	Duration      time.Duration
	RenewDeadline time.Duration
	RetryPeriod   time.Duration
	// Clock reads the time the lock is judged by; nil is the machine's clocks. Tests fake it.
	Clock LockClock
}

// DefaultLockTiming is the timing of every run; tests shorten it.
func DefaultLockTiming() LockTiming {
	return LockTiming{Duration: 60 * time.Second, RenewDeadline: 40 * time.Second, RetryPeriod: 5 * time.Second}
}

// LockClock reads the two clocks a lock is judged by. The monotonic clock measures the run's
// own time, immune to changes of the wall clock, but it stops while the machine is suspended
// (Linux's CLOCK_MONOTONIC, macOS's uptime clock). The wall clock goes on during a suspend, and
// it is the clock by which other runs judge the Lease (renewTime + leaseDurationSeconds): a
// laptop that slept past its Lease sees little time passed on its monotonic clock, and only the
// wall clock tells it that another run may have taken over. The lock holds while neither clock
// says that the renew deadline has passed.
type LockClock interface {
	// Monotonic is the time since a fixed origin of the clock, without wall-clock changes.
	Monotonic() time.Duration
	// Wall is the time of day (without a monotonic reading).
	Wall() time.Time
}
