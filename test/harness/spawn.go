package harness

import (
	"errors"
	"runtime"
	"sync"
)

// spawner starts processes from one OS thread that lives as long as the
// Harness. The kernel's parent-death signal (Pdeathsig, SIGKILL here) fires
// when the thread that forked a child exits, not the whole process; Go may
// end a thread that a goroutine locked, so children are forked from this
// locked, long-lived thread only. When the Harness closes the goroutine
// returns while still locked, the thread exits, and any child that somehow
// survived Stop gets SIGKILL.
type spawner struct {
	mu      sync.Mutex // held while a request runs, so stop waits for it
	stopped bool
	reqs    chan func()
	done    chan struct{}
}

func newSpawner() *spawner {
	s := &spawner{reqs: make(chan func()), done: make(chan struct{})}
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		defer close(s.done)
		for f := range s.reqs {
			f()
		}
	}()
	return s
}

// run calls f on the spawner's thread and waits for it.
func (s *spawner) run(f func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return errors.New("harness closed")
	}
	errc := make(chan error, 1)
	s.reqs <- func() { errc <- f() }
	return <-errc
}

// stop ends the thread.
func (s *spawner) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopped {
		return
	}
	s.stopped = true
	close(s.reqs)
	<-s.done
}
