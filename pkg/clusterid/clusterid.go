// Package clusterid keeps an app from acting on the wrong cluster. The app directory records,
// per kube context it was deliberately deployed through, the identity of the cluster behind it
// (the kube-system namespace's UID decides; the server URL and CA fingerprint only make messages
// readable, since certificates rotate and proxies change addresses). Decide compares the cluster
// a run reaches with that record. Nothing here talks to the cluster.
package clusterid

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/fsutil"
)

// Identity is the cluster a kube context reaches.
type Identity struct {
	// Context is the kubeconfig context the run used ("" when none was selected).
	Context string `json:"context"`
	// Server is the API server URL: for messages only.
	Server string `json:"server"`
	// CAFingerprint is the sha256 of the cluster's CA certificate: for messages only.
	CAFingerprint string `json:"caFingerprint,omitempty"`
	// UID is the UID of the kube-system namespace: it decides whether two runs reach the same
	// cluster, as it lives as long as the cluster's etcd data.
	UID string `json:"kubeSystemUID"`
	// Added is when the app first recorded this context.
	Added time.Time `json:"added,omitzero"`
}

// ShortUID is the first block of the UID, enough to tell clusters apart in a message.
func (i Identity) ShortUID() string {
	if n := strings.IndexByte(i.UID, '-'); n > 0 {
		return i.UID[:n]
	}
	return i.UID
}

// String names the cluster for a message: context, server and short UID.
func (i Identity) String() string {
	return fmt.Sprintf("context %s (server %s, kube-system UID %s)", contextName(i.Context), i.Server, i.ShortUID())
}

func contextName(c string) string {
	if c == "" {
		return `""`
	}
	return fmt.Sprintf("%q", c)
}

// FlagAdd is the flag of apply, diff and delete that adds the current cluster to the app.
const FlagAdd = "--add-cluster"

// StateDir and StateFile are where the app directory records its clusters. The directory is
// not an input of generate, so recording a cluster never makes manifests stale.
const (
	StateDir  = ".kfdeploy"
	StateFile = "clusters.yaml"
)

// StatePath is the state file of an app directory.
func StatePath(appDir string) string { return filepath.Join(appDir, StateDir, StateFile) }

// State is what an app directory knows about the clusters it was deployed to.
type State struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Clusters   []Identity `json:"clusters"`
}

const (
	stateAPIVersion = "kfdeploy.dev/v1alpha1"
	stateKind       = "Clusters"
)

// Load reads the state file of appDir; a missing file is an empty state (an app never applied).
func Load(appDir string) (*State, error) {
	path := StatePath(appDir)
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &State{APIVersion: stateAPIVersion, Kind: stateKind}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read known clusters: %w", err)
	}
	var s State
	if err := yaml.UnmarshalStrict(data, &s); err != nil {
		return nil, fmt.Errorf("%s: %w (fix or remove the file; the next apply records the cluster again)", path, err)
	}
	if s.Kind != stateKind || s.APIVersion != stateAPIVersion {
		return nil, fmt.Errorf("%s: kind %q apiVersion %q, want %s %s", path, s.Kind, s.APIVersion, stateKind, stateAPIVersion)
	}
	for _, c := range s.Clusters {
		if c.UID == "" {
			return nil, fmt.Errorf("%s: context %s has no kubeSystemUID (fix or remove the entry)", path, contextName(c.Context))
		}
	}
	return &s, nil
}

// Save writes the state file atomically, creating its directory.
func (s *State) Save(appDir string) error {
	path := StatePath(appDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("record cluster: %w", err)
	}
	out := *s
	out.APIVersion, out.Kind = stateAPIVersion, stateKind
	out.Clusters = append([]Identity(nil), s.Clusters...)
	sort.Slice(out.Clusters, func(i, j int) bool { return out.Clusters[i].Context < out.Clusters[j].Context })
	data, err := yaml.Marshal(out)
	if err != nil {
		return fmt.Errorf("record cluster: %w", err)
	}
	header := []byte("# Clusters this app was deployed to, one per kube context (kfdeploy apply --add-cluster adds one).\n")
	return fsutil.WriteFile(path, append(header, data...), 0o644)
}

// Lookup returns the identity recorded for a context.
func (s *State) Lookup(context string) (Identity, bool) {
	for _, c := range s.Clusters {
		if c.Context == context {
			return c, true
		}
	}
	return Identity{}, false
}

// Record sets the identity of id.Context, keeping when it was first added.
func (s *State) Record(id Identity, now time.Time) {
	for i, c := range s.Clusters {
		if c.Context == id.Context {
			if c.UID == id.UID && !c.Added.IsZero() {
				id.Added = c.Added
			} else {
				id.Added = now
			}
			s.Clusters[i] = id
			return
		}
	}
	id.Added = now
	s.Clusters = append(s.Clusters, id)
}

// Operation is what a run is about to do with the cluster, worded for "refusing to ...".
type Operation string

const (
	Apply  Operation = "apply"
	Diff   Operation = "diff"
	Delete Operation = "delete"
	// Test creates and deletes workloads in the app's namespace (kfdeploy test).
	Test Operation = "test"
	// Status only reads.
	Status Operation = "show status"
	// CreateVolumes is standalone preflight creating NFS PersistentVolumes.
	CreateVolumes Operation = "create NFS PersistentVolumes"
)

// hint is the end of a refusal: what to do if the cluster is meant. Apply, diff and delete
// have the flag; the others point at diff, which records the cluster and changes nothing on it.
func (op Operation) hint() string {
	if op == Apply || op == Diff || op == Delete {
		return "rerun with " + FlagAdd + " if this cluster is meant"
	}
	return "run 'kfdeploy diff " + FlagAdd + "' (it changes nothing on the cluster) if this cluster is meant"
}

// Run is what the guard needs to know about a run.
type Run struct {
	Op Operation
	// Add: --add-cluster was given.
	Add bool
	// Deployed: the cluster already holds the app's inventory. It matters only when the app
	// directory records no cluster at all (a fresh clone, a CI runner): the inventory's own
	// record of its cluster cannot tell a wrong cluster that runs the same app (a production
	// cluster and its staging copy), so such a run needs Add.
	Deployed bool
	// Namespace is the app's namespace, for the message.
	Namespace string
}

// Decision is what a run does about the cluster it reaches.
type Decision struct {
	// Record: the state file gets the current identity (a first apply, an added cluster, or a
	// known cluster whose server or CA changed).
	Record bool
}

// Decide compares the cluster a run reaches (current) with what the app knows. The first apply
// of an app (nothing known, nothing of the app on the cluster) records the cluster; a context
// the app knows, reaching the cluster it knew, goes ahead; anything else is refused with a
// *RefusedError unless r.Add is set, which records the current cluster for its context. Status
// only reads: with nothing known it goes ahead. A run that is refused must write nothing.
func Decide(s *State, current Identity, r Run) (Decision, error) {
	if current.UID == "" {
		return Decision{}, errors.New("the identity of the current cluster is unknown (no kube-system UID)")
	}
	known, ok := s.Lookup(current.Context)
	switch {
	case ok && known.UID == current.UID:
		changed := known.Server != current.Server || known.CAFingerprint != current.CAFingerprint
		return Decision{Record: changed && r.Op == Apply}, nil
	case len(s.Clusters) == 0 && r.Deployed && !r.Add && r.Op != Status:
		return Decision{}, &RefusedError{Op: r.Op, Current: current, Unrecorded: true, Namespace: r.Namespace}
	case len(s.Clusters) == 0:
		return Decision{Record: r.Op == Apply || r.Add}, nil
	case r.Add:
		return Decision{Record: true}, nil
	case ok:
		return Decision{}, &RefusedError{Op: r.Op, Current: current, Known: []Identity{known}, Changed: true}
	}
	return Decision{}, &RefusedError{Op: r.Op, Current: current, Known: append([]Identity(nil), s.Clusters...)}
}

// RefusedError says that a run reaches a cluster the app does not know.
type RefusedError struct {
	Op      Operation
	Current Identity
	Known   []Identity
	// Changed: the context is known, but reaches another cluster than when it was recorded.
	Changed bool
	// Unrecorded: the app directory records no cluster, and the cluster already holds the app
	// (in Namespace).
	Unrecorded bool
	Namespace  string
}

func (e *RefusedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to %s: ", e.Op)
	state := filepath.Join(StateDir, StateFile)
	switch {
	case e.Unrecorded:
		fmt.Fprintf(&b, "%s already holds this app (its inventory in namespace %s), and the app directory records no cluster (%s is missing, as in a fresh clone); nothing was changed: restore %s (commit it with the app), or %s",
			e.Current, e.Namespace, state, state, e.Op.hint())
		return b.String()
	case e.Changed:
		fmt.Fprintf(&b, "context %s now reaches another cluster (server %s, kube-system UID %s) than the app was deployed to (server %s, kube-system UID %s)",
			contextName(e.Current.Context), e.Current.Server, e.Current.ShortUID(), e.Known[0].Server, e.Known[0].ShortUID())
	default:
		known := make([]string, 0, len(e.Known))
		var same []string
		for _, k := range e.Known {
			known = append(known, k.String())
			if k.UID == e.Current.UID {
				same = append(same, contextName(k.Context))
			}
		}
		fmt.Fprintf(&b, "the app knows %s, not %s", strings.Join(known, ", "), e.Current)
		if len(same) > 0 {
			fmt.Fprintf(&b, " (the same cluster as context %s)", strings.Join(same, ", "))
		}
	}
	fmt.Fprintf(&b, "; nothing was changed: check --context and KUBECONFIG, or %s", e.Op.hint())
	return b.String()
}

// CAFingerprint is the sha256 of the first certificate in a PEM bundle, as hex with colons
// (as openssl x509 -fingerprint -sha256 prints it), or "" when there is none.
func CAFingerprint(pemData []byte) string {
	for len(pemData) > 0 {
		var block *pem.Block
		block, pemData = pem.Decode(pemData)
		if block == nil {
			return ""
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(block.Bytes); err != nil {
			return ""
		}
		sum := sha256.Sum256(block.Bytes)
		hexSum := strings.ToUpper(hex.EncodeToString(sum[:]))
		parts := make([]string, 0, len(sum))
		for i := 0; i < len(hexSum); i += 2 {
			parts = append(parts, hexSum[i:i+2])
		}
		return strings.Join(parts, ":")
	}
	return ""
}
