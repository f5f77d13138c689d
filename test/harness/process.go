package harness

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Process is one running program.
type Process struct {
	// Name is the Program's name.
	Name string
	// Dir is the process's private directory: materialised volumes
	// (volumes/NAME), kubeconfig, hosts file, log.
	Dir string
	// LogPath is the file holding the process's stdout and stderr.
	LogPath string
	// Argv is the command line it was started with (after rewrites).
	Argv []string

	cmd     *exec.Cmd
	exited  chan struct{}
	exitErr error

	mu      sync.Mutex
	lines   []string
	changed chan struct{} // closed and replaced on every new line
	logFile *os.File
	readers sync.WaitGroup
}

// Pid is the process id.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited is closed when the process has exited.
func (p *Process) Exited() <-chan struct{} { return p.exited }

// Err is the process's exit error once Exited is closed (nil for exit 0).
func (p *Process) Err() error {
	<-p.exited
	return p.exitErr
}

// Running tells whether the process has not exited yet.
func (p *Process) Running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// Lines returns every log line so far (stdout and stderr interleaved).
func (p *Process) Lines() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.lines...)
}

// Log returns the whole log so far.
func (p *Process) Log() string { return strings.Join(p.Lines(), "\n") }

// Forbidden returns every log line containing "forbidden" (any case): the
// program was refused an API request, i.e. its RBAC is missing something.
func (p *Process) Forbidden() []string {
	var out []string
	for _, l := range p.Lines() {
		if strings.Contains(strings.ToLower(l), "forbidden") {
			out = append(out, l)
		}
	}
	return out
}

// WaitLog waits until a log line matches re and returns it. It fails when ctx
// ends or the process exits first (the error then quotes the log's tail).
func (p *Process) WaitLog(ctx context.Context, re *regexp.Regexp) (string, error) {
	seen := 0
	for {
		p.mu.Lock()
		lines, ch := p.lines[seen:], p.changed
		p.mu.Unlock()
		for _, l := range lines {
			if re.MatchString(l) {
				return l, nil
			}
		}
		seen += len(lines)
		select {
		case <-ch:
		case <-p.exited:
			// Drain what the readers still had.
			p.readers.Wait()
			for _, l := range p.Lines()[seen:] {
				if re.MatchString(l) {
					return l, nil
				}
			}
			return "", fmt.Errorf("%s exited (%v) before logging a line matching %q; log tail:\n%s", p.Name, p.exitErr, re, p.tail(20))
		case <-ctx.Done():
			return "", fmt.Errorf("%s logged no line matching %q: %w; log tail:\n%s", p.Name, re, ctx.Err(), p.tail(20))
		}
	}
}

func (p *Process) tail(n int) string {
	l := p.Lines()
	if len(l) > n {
		l = l[len(l)-n:]
	}
	return strings.Join(l, "\n")
}

func (p *Process) addLine(l string) {
	p.mu.Lock()
	p.lines = append(p.lines, l)
	close(p.changed)
	p.changed = make(chan struct{})
	if p.logFile != nil {
		fmt.Fprintln(p.logFile, l)
	}
	p.mu.Unlock()
}

func (p *Process) read(r io.Reader) {
	defer p.readers.Done()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	for sc.Scan() {
		p.addLine(sc.Text())
	}
}

// start runs cmd with its output captured. The process gets its own process
// group (Stop signals the whole group) and SIGKILL when the test process dies.
func (p *Process) start(cmd *exec.Cmd) error {
	f, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("open log %s: %w", p.LogPath, err)
	}
	p.logFile = f
	p.changed = make(chan struct{})
	p.exited = make(chan struct{})
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		f.Close()
		return err
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		f.Close()
		return err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd = cmd
	p.readers.Add(2)
	go p.read(stdout)
	go p.read(stderr)
	go func() {
		// Wait closes the pipes only after the readers are done with them.
		p.readers.Wait()
		p.exitErr = cmd.Wait()
		p.mu.Lock()
		p.logFile.Close()
		p.logFile = nil
		p.mu.Unlock()
		close(p.exited)
	}()
	return nil
}

// Stop sends SIGTERM to the process group, then SIGKILL after grace, and
// waits for the exit.
func (p *Process) Stop(grace time.Duration) {
	if p.cmd == nil || !p.Running() {
		return
	}
	pgid := p.cmd.Process.Pid
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-p.exited
	}
	// Children that left the group's leader behind.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
}
