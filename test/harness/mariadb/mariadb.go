// Package mariadb runs a private MariaDB server for tests that need a real MySQL-compatible
// database. The server comes from Debian's packages, unpacked into a cache directory without a
// system install (apt-get download + dpkg-deb -x), and listens on 127.0.0.1 only, with its
// socket and data in a directory of the caller's. The server process dies with the test.
package mariadb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Packages are what the server and its client need beyond a base Debian 12 system:
// mariadbd and mariadb-install-db (mariadb-server-core), the client and my_print_defaults
// (mariadb-client-core), and the libraries a fresh machine lacks.
var Packages = []string{"mariadb-server-core", "mariadb-client-core", "libmariadb3", "libaio1", "liburing2", "libnuma1"}

// DefaultCacheDir is where Fetch unpacks the packages: ~/.cache/kfdeploy/harness/mariadb.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("mariadb: no cache directory: %w", err)
	}
	return filepath.Join(dir, "kfdeploy", "harness", "mariadb"), nil
}

// Install is an unpacked MariaDB: the root of the packages' file trees.
type Install struct{ Root string }

func (in Install) bin(name string) string { return filepath.Join(in.Root, "usr", name) }

func (in Install) env() []string {
	return append(os.Environ(), "LD_LIBRARY_PATH="+filepath.Join(in.Root, "usr", "lib", "x86_64-linux-gnu"))
}

// stampName marks a complete unpack; it lists the .deb files it came from.
const stampName = ".unpacked"

// Fetch returns the MariaDB unpacked under cacheDir, downloading and unpacking the packages
// first if they are not there. It runs apt-get update once if apt does not know the packages
// (a fresh machine), which needs root.
func Fetch(ctx context.Context, cacheDir string) (Install, error) {
	in := Install{Root: filepath.Join(cacheDir, "root")}
	if _, err := os.Stat(filepath.Join(in.Root, stampName)); err == nil {
		return in, nil
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Install{}, fmt.Errorf("mariadb: create cache %s: %w", cacheDir, err)
	}
	work, err := os.MkdirTemp(cacheDir, "fetch-")
	if err != nil {
		return Install{}, fmt.Errorf("mariadb: %w", err)
	}
	defer os.RemoveAll(work)
	// apt's sandbox user must be able to write the download directory.
	if err := os.Chmod(work, 0o777); err != nil {
		return Install{}, fmt.Errorf("mariadb: %w", err)
	}
	download := func() ([]byte, error) {
		cmd := exec.CommandContext(ctx, "apt-get", append([]string{"download", "-q"}, Packages...)...)
		cmd.Dir = work
		return cmd.CombinedOutput()
	}
	out, err := download()
	if err != nil && os.Geteuid() == 0 {
		// A fresh machine has no package lists yet.
		if up, uerr := exec.CommandContext(ctx, "apt-get", "update", "-q").CombinedOutput(); uerr != nil {
			return Install{}, fmt.Errorf("mariadb: apt-get update failed: %w: %s", uerr, lastLines(up))
		}
		out, err = download()
	}
	if err != nil {
		return Install{}, fmt.Errorf("mariadb: apt-get download %s failed (run 'apt-get update' as root first): %w: %s", strings.Join(Packages, " "), err, lastLines(out))
	}
	debs, err := filepath.Glob(filepath.Join(work, "*.deb"))
	if err != nil || len(debs) < len(Packages) {
		return Install{}, fmt.Errorf("mariadb: apt-get download left %d .deb files in %s, want %d", len(debs), work, len(Packages))
	}
	sort.Strings(debs)
	tree := filepath.Join(work, "root")
	var names []string
	for _, deb := range debs {
		if out, err := exec.CommandContext(ctx, "dpkg-deb", "-x", deb, tree).CombinedOutput(); err != nil {
			return Install{}, fmt.Errorf("mariadb: dpkg-deb -x %s: %w: %s", filepath.Base(deb), err, lastLines(out))
		}
		names = append(names, filepath.Base(deb))
	}
	if err := os.WriteFile(filepath.Join(tree, stampName), []byte(strings.Join(names, "\n")+"\n"), 0o644); err != nil {
		return Install{}, fmt.Errorf("mariadb: %w", err)
	}
	// Another process may have unpacked meanwhile; either tree is complete.
	if err := os.Rename(tree, in.Root); err != nil {
		if _, serr := os.Stat(filepath.Join(in.Root, stampName)); serr != nil {
			return Install{}, fmt.Errorf("mariadb: move unpacked packages to %s: %w", in.Root, err)
		}
	}
	return in, nil
}

// Server is a running mariadbd.
type Server struct {
	// Port is the TCP port on 127.0.0.1.
	Port int
	// Socket is the Unix socket, on which root logs in without a password.
	Socket string
	// Log is the server's error log.
	Log string

	install Install
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// Start initialises a data directory in dir (dir holds the data, the socket and the logs) and
// starts mariadbd on 127.0.0.1 at a free port. A data directory that an earlier Start left in
// dir is used as it is (its databases, users and passwords kept), as a database server's pod
// finds its volume after a restart. It returns once the server accepts connections. Stop ends
// it; so does the end of the calling process.
func (in Install) Start(ctx context.Context, dir string) (*Server, error) {
	data, run := filepath.Join(dir, "data"), filepath.Join(dir, "run")
	for _, d := range []string{data, run} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("mariadb: %w", err)
		}
	}
	// mariadbd refuses to run as root unless told to be root.
	var asRoot []string
	if os.Geteuid() == 0 {
		asRoot = []string{"--user=root"}
	}
	initArgs := append([]string{
		"--no-defaults",
		"--basedir=" + in.bin(""),
		"--datadir=" + data,
		"--auth-root-authentication-method=socket",
		"--skip-test-db",
		"--skip-name-resolve",
	}, asRoot...)
	if _, err := os.Stat(filepath.Join(data, "mysql")); err != nil {
		initCmd := exec.CommandContext(ctx, in.bin("bin/mariadb-install-db"), initArgs...)
		initCmd.Env = in.env()
		if out, err := initCmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("mariadb: mariadb-install-db in %s: %w: %s", data, err, lastLines(out))
		}
	}

	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{
		Port:    port,
		Socket:  filepath.Join(run, "mysqld.sock"),
		Log:     filepath.Join(run, "error.log"),
		install: in,
		exited:  make(chan struct{}),
	}
	args := append([]string{
		"--no-defaults",
		"--basedir=" + in.bin(""),
		"--datadir=" + data,
		"--lc-messages-dir=" + in.bin("share/mysql"),
		"--socket=" + s.Socket,
		"--pid-file=" + filepath.Join(run, "mysqld.pid"),
		"--log-error=" + s.Log,
		"--bind-address=127.0.0.1",
		"--port=" + strconv.Itoa(port),
		"--skip-name-resolve",
	}, asRoot...)
	s.cmd = exec.Command(in.bin("sbin/mariadbd"), args...)
	s.cmd.Env = in.env()
	// The server must not outlive the test that started it.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("mariadb: start mariadbd: %w", err)
	}
	go func() { s.waitErr = s.cmd.Wait(); close(s.exited) }()

	deadline := time.NewTimer(60 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if s.Exec(ctx, "SELECT 1") == nil {
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("mariadb: mariadbd exited before accepting connections (%v); its log %s ends: %s", s.waitErr, s.Log, s.logTail())
		case <-deadline.C:
			_ = s.Stop()
			return nil, fmt.Errorf("mariadb: mariadbd accepted no connection within 60s; its log %s ends: %s", s.Log, s.logTail())
		case <-ctx.Done():
			_ = s.Stop()
			return nil, fmt.Errorf("mariadb: %w", ctx.Err())
		case <-tick.C:
		}
	}
}

// Exec runs SQL as the server's root user over the socket. The SQL goes through stdin, so
// passwords in it never appear in a process list.
func (s *Server) Exec(ctx context.Context, sql string) error {
	cmd := exec.CommandContext(ctx, s.install.bin("bin/mariadb"), "--no-defaults", "--socket="+s.Socket, "-u", "root", "--batch")
	cmd.Env = s.install.env()
	cmd.Stdin = strings.NewReader(sql)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("mariadb: SQL failed: %w: %s", err, lastLines(out.Bytes()))
	}
	return nil
}

// CreateDatabase creates a database and a user that may use it from any host, with the given
// password (as the MySQL image's MYSQL_DATABASE, MYSQL_USER and MYSQL_PASSWORD do).
func (s *Server) CreateDatabase(ctx context.Context, database, user, password string) error {
	quote := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'" }
	sql := fmt.Sprintf("CREATE DATABASE IF NOT EXISTS `%s`;\nCREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s;\nGRANT ALL ON `%s`.* TO %s@'%%';\n",
		database, quote(user), quote(password), database, quote(user))
	if err := s.Exec(ctx, sql); err != nil {
		return fmt.Errorf("create database %s and user %s: %w", database, user, err)
	}
	return nil
}

// Addr is the server's TCP address.
func (s *Server) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.Port)) }

// Stop ends the server and waits for it.
func (s *Server) Stop() error {
	select {
	case <-s.exited:
		return nil
	default:
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	var exit *exec.ExitError
	if s.waitErr != nil && !errors.As(s.waitErr, &exit) {
		return fmt.Errorf("mariadb: stop: %w", s.waitErr)
	}
	return nil
}

func (s *Server) logTail() string {
	b, err := os.ReadFile(s.Log)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	return lastLines(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("mariadb: find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lastLines keeps the end of a command's output for an error message.
func lastLines(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	return strings.Join(lines, " | ")
}
