package mariadb

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Query runs SQL over TCP at addr (host:port, e.g. a Service's ClusterIP that the harness
// forwards) as user with password, in database, the way an application signs in, and returns
// the result rows tab-separated without a header. The password goes through a private
// option file, never the command line.
func (in Install) Query(ctx context.Context, addr, user, password, database, sql string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", fmt.Errorf("mariadb: address %q: %w", addr, err)
	}
	dir, err := os.MkdirTemp("", "mariadb-client-")
	if err != nil {
		return "", fmt.Errorf("mariadb: %w", err)
	}
	defer os.RemoveAll(dir)
	opts := filepath.Join(dir, "client.cnf")
	quoted := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(password)
	if err := os.WriteFile(opts, []byte("[client]\npassword=\""+quoted+"\"\n"), 0o600); err != nil {
		return "", fmt.Errorf("mariadb: %w", err)
	}
	cmd := exec.CommandContext(ctx, in.bin("bin/mariadb"), "--defaults-file="+opts, "--protocol=TCP",
		"--host="+host, "--port="+port, "--user="+user, "--database="+database, "--batch", "--skip-column-names")
	cmd.Env = in.env()
	cmd.Stdin = strings.NewReader(sql)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("mariadb: SQL as %s at %s failed: %w: %s", user, addr, err, lastLines(errOut.Bytes()))
	}
	return out.String(), nil
}
