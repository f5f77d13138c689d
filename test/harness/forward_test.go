package harness

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

func TestForwarder(t *testing.T) {
	backend, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer backend.Close()
	go func() {
		for {
			c, err := backend.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				line, _ := bufio.NewReader(c).ReadString('\n')
				_, _ = c.Write([]byte("echo " + line))
			}()
		}
	}()
	// A loopback address other than 127.0.0.1, as a ClusterIP would be.
	f, err := startForwarder("127.0.0.2:0", backend.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	addr := f.ln.Addr().String()
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write([]byte("hi\n")); err != nil {
			t.Fatal(err)
		}
		got, err := bufio.NewReader(c).ReadString('\n')
		c.Close()
		if err != nil || strings.TrimSpace(got) != "echo hi" {
			t.Fatalf("through the forwarder: %q, %v; want \"echo hi\"", got, err)
		}
	}
	f.Close()
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Close", addr)
	}
}
