package clusterid

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var (
	clusterA = Identity{Context: "prod", Server: "https://10.0.0.1:6443", CAFingerprint: "AA:BB", UID: "1a2b3c4d-0000-4000-8000-000000000001"}
	clusterB = Identity{Context: "staging", Server: "https://10.0.0.2:6443", CAFingerprint: "CC:DD", UID: "5e6f7a8b-0000-4000-8000-000000000002"}
	now      = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
)

func stateWith(ids ...Identity) *State {
	s := &State{}
	for _, id := range ids {
		s.Record(id, now)
	}
	return s
}

func TestDecide(t *testing.T) {
	bAsProd := clusterB
	bAsProd.Context = "prod" // the same context name pointed at another cluster
	aMoved := clusterA
	aMoved.Server, aMoved.CAFingerprint = "https://proxy.example:443", "EE:FF" // same cluster
	aRenamed := clusterA
	aRenamed.Context = "prod-admin"

	tests := []struct {
		name       string
		state      *State
		current    Identity
		op         Operation
		add        bool
		deployed   bool
		wantRecord bool
		wantErr    []string // substrings of the refusal; nil: no error
	}{
		{name: "first apply records", state: stateWith(), current: clusterA, op: Apply, wantRecord: true},
		{name: "first diff records nothing", state: stateWith(), current: clusterA, op: Diff},
		{name: "first delete records nothing", state: stateWith(), current: clusterA, op: Delete},
		{name: "known context, same cluster", state: stateWith(clusterA), current: clusterA, op: Apply},
		{name: "known cluster behind a new address: apply updates the message fields", state: stateWith(clusterA), current: aMoved, op: Apply, wantRecord: true},
		{name: "known cluster behind a new address: delete goes ahead", state: stateWith(clusterA), current: aMoved, op: Delete},
		{name: "unknown context refused", state: stateWith(clusterA), current: clusterB, op: Delete,
			wantErr: []string{"refusing to delete", `context "prod" (server https://10.0.0.1:6443, kube-system UID 1a2b3c4d)`, `not context "staging" (server https://10.0.0.2:6443, kube-system UID 5e6f7a8b)`, "--add-cluster"}},
		{name: "same context name, other cluster refused", state: stateWith(clusterA), current: bAsProd, op: Apply,
			wantErr: []string{"refusing to apply", `context "prod" now reaches another cluster (server https://10.0.0.2:6443, kube-system UID 5e6f7a8b)`, "(server https://10.0.0.1:6443, kube-system UID 1a2b3c4d)", "--add-cluster"}},
		{name: "same context name, other cluster, diff refused too", state: stateWith(clusterA), current: bAsProd, op: Diff, wantErr: []string{"refusing to diff"}},
		{name: "same cluster under another context name refused, and said", state: stateWith(clusterA), current: aRenamed, op: Apply,
			wantErr: []string{`not context "prod-admin"`, `the same cluster as context "prod"`}},
		{name: "unknown context added with the flag", state: stateWith(clusterA), current: clusterB, op: Apply, add: true, wantRecord: true},
		{name: "changed context replaced with the flag", state: stateWith(clusterA), current: bAsProd, op: Delete, add: true, wantRecord: true},
		{name: "flag on a first diff records", state: stateWith(), current: clusterA, op: Diff, add: true, wantRecord: true},
		{name: "fresh clone: apply on a cluster holding the app refused", state: stateWith(), current: clusterA, op: Apply, deployed: true,
			wantErr: []string{"refusing to apply", `context "prod" (server https://10.0.0.1:6443, kube-system UID 1a2b3c4d) already holds this app (its inventory in namespace kf)`, ".kfdeploy/clusters.yaml is missing", "--add-cluster"}},
		{name: "fresh clone: diff refused", state: stateWith(), current: clusterA, op: Diff, deployed: true, wantErr: []string{"refusing to diff"}},
		{name: "fresh clone: delete refused", state: stateWith(), current: clusterA, op: Delete, deployed: true, wantErr: []string{"refusing to delete"}},
		{name: "fresh clone: test refused, pointing at diff", state: stateWith(), current: clusterA, op: Test, deployed: true, wantErr: []string{"refusing to test", "kfdeploy diff --add-cluster"}},
		{name: "fresh clone: NFS volumes refused", state: stateWith(), current: clusterA, op: CreateVolumes, deployed: true, wantErr: []string{"refusing to create NFS PersistentVolumes"}},
		{name: "fresh clone: status reads", state: stateWith(), current: clusterA, op: Status, deployed: true},
		{name: "fresh clone: apply with the flag records", state: stateWith(), current: clusterA, op: Apply, deployed: true, add: true, wantRecord: true},
		{name: "fresh clone: delete with the flag records", state: stateWith(), current: clusterA, op: Delete, deployed: true, add: true, wantRecord: true},
		{name: "nothing known, nothing deployed: test goes ahead, records nothing", state: stateWith(), current: clusterA, op: Test},
		{name: "nothing known, nothing deployed: NFS volumes go ahead, record nothing", state: stateWith(), current: clusterA, op: CreateVolumes},
		{name: "unknown context: status refused, pointing at diff", state: stateWith(clusterA), current: clusterB, op: Status,
			wantErr: []string{"refusing to show status", `not context "staging"`, "run 'kfdeploy diff --add-cluster'"}},
		{name: "unknown context: test refused", state: stateWith(clusterA), current: clusterB, op: Test, wantErr: []string{"refusing to test"}},
		{name: "two known, the second one used", state: stateWith(clusterA, clusterB), current: clusterB, op: Diff},
		{name: "two known, a third refused naming both", state: stateWith(clusterA, clusterB), current: Identity{Context: "laptop", Server: "https://127.0.0.1:1", UID: "99999999-x"}, op: Apply,
			wantErr: []string{`context "prod"`, `context "staging"`, `not context "laptop"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Decide(tt.state, tt.current, Run{Op: tt.op, Add: tt.add, Deployed: tt.deployed, Namespace: "kf"})
			if tt.wantErr == nil {
				if err != nil {
					t.Fatalf("Decide: %v", err)
				}
				if d.Record != tt.wantRecord {
					t.Errorf("Record = %v, want %v", d.Record, tt.wantRecord)
				}
				return
			}
			var refused *RefusedError
			if !errors.As(err, &refused) {
				t.Fatalf("Decide: error %v, want *RefusedError", err)
			}
			if d.Record {
				t.Error("a refused run must record nothing")
			}
			msg := err.Error()
			if strings.Contains(msg, "\n") {
				t.Errorf("refusal is not one line: %q", msg)
			}
			for _, want := range tt.wantErr {
				if !strings.Contains(msg, want) {
					t.Errorf("refusal %q\n  does not contain %q", msg, want)
				}
			}
		})
	}
}

func TestDecideNeedsUID(t *testing.T) {
	if _, err := Decide(stateWith(), Identity{Context: "x"}, Run{Op: Apply}); err == nil {
		t.Fatal("Decide accepted a cluster without a kube-system UID")
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	empty, err := Load(dir)
	if err != nil {
		t.Fatalf("Load of an app never applied: %v", err)
	}
	if len(empty.Clusters) != 0 {
		t.Fatalf("empty state has %d clusters", len(empty.Clusters))
	}
	empty.Record(clusterB, now)
	empty.Record(clusterA, now)
	if err := empty.Save(dir); err != nil {
		t.Fatal(err)
	}
	loaded, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(loaded.Clusters) != 2 || loaded.Clusters[0].Context != "prod" || loaded.Clusters[1].Context != "staging" {
		t.Fatalf("loaded %+v, want prod then staging", loaded.Clusters)
	}
	got, ok := loaded.Lookup("staging")
	if !ok || got.UID != clusterB.UID || got.Server != clusterB.Server || got.CAFingerprint != clusterB.CAFingerprint || !got.Added.Equal(now) {
		t.Errorf("staging = %+v, want %+v added %s", got, clusterB, now)
	}
	// Nothing but the state file is left in its directory (the write is atomic).
	entries, err := os.ReadDir(filepath.Join(dir, StateDir))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != StateFile {
		t.Errorf("%s holds %v, want only %s", StateDir, entries, StateFile)
	}
}

func TestRecordKeepsAddedForTheSameCluster(t *testing.T) {
	s := stateWith(clusterA)
	later := now.Add(time.Hour)
	moved := clusterA
	moved.Server = "https://proxy.example:443"
	s.Record(moved, later)
	if got, _ := s.Lookup("prod"); !got.Added.Equal(now) || got.Server != moved.Server {
		t.Errorf("after a new address: %+v, want server %s added %s", got, moved.Server, now)
	}
	other := clusterB
	other.Context = "prod"
	s.Record(other, later)
	if got, _ := s.Lookup("prod"); !got.Added.Equal(later) || got.UID != clusterB.UID {
		t.Errorf("after replacing the cluster: %+v, want UID %s added %s", got, clusterB.UID, later)
	}
	if len(s.Clusters) != 1 {
		t.Errorf("%d entries for one context", len(s.Clusters))
	}
}

func TestLoadRejectsBrokenState(t *testing.T) {
	for name, content := range map[string]string{
		"unknown field": "apiVersion: kfdeploy.dev/v1alpha1\nkind: Clusters\nclusters:\n- context: a\n  kubeSystemUID: u\n  colour: red\n",
		"no uid":        "apiVersion: kfdeploy.dev/v1alpha1\nkind: Clusters\nclusters:\n- context: a\n",
		"wrong kind":    "apiVersion: kfdeploy.dev/v1alpha1\nkind: App\n",
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.MkdirAll(filepath.Join(dir, StateDir), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(StatePath(dir), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Load(dir)
			if err == nil || !strings.Contains(err.Error(), StatePath(dir)) {
				t.Fatalf("Load: %v, want an error naming %s", err, StatePath(dir))
			}
		})
	}
}

func TestCAFingerprint(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test-ca"},
		NotBefore: now, NotAfter: now.Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	sum := sha256.Sum256(der)
	got := CAFingerprint(append(pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{6, 8}}), certPEM...))
	if want := strings.ToUpper(hex.EncodeToString(sum[:])); len(got) != 32*3-1 || strings.ReplaceAll(got, ":", "") != want {
		t.Errorf("CAFingerprint = %q, want the colon-separated sha256 of the certificate", got)
	}
	if CAFingerprint(nil) != "" || CAFingerprint([]byte("not pem")) != "" {
		t.Error("CAFingerprint of no certificate is not empty")
	}
}
