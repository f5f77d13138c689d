//go:build conformance

package conformance

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kfdeploy/kfdeploy/pkg/manifest"
	"github.com/kfdeploy/kfdeploy/test/harness"
	"github.com/kfdeploy/kfdeploy/test/harness/mariadb"
	"github.com/kfdeploy/kfdeploy/test/internal/e2eutil"
)

// The previous release: the full preset as kfdeploy at this commit rendered it (the last commit
// of main before the component releases were bumped), snapshotted by scripts/upgrade-snapshot.sh
// with the namespace prevNamespace.
const (
	upgradeSnapshot = "testdata/upgrade"
	prevCommit      = "8fd3195bdbd706e689919446fc5d4b398db86b9b"
	prevNamespace   = "kfupgrade-prev"
)

// fetchMariaDB is the MariaDB of the harness's cache, fetched the first time.
func fetchMariaDB(ctx context.Context, t *testing.T) mariadb.Install {
	t.Helper()
	cache, err := mariadb.DefaultCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	db, err := mariadb.Fetch(ctx, cache)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// upgradeDatabases are the full preset's MySQL servers: Service (and Deployment, claim and
// "<name>-secrets" Secret) names.
var upgradeDatabases = []string{"katib-mysql", "modeldb-mysql"}

var placeholderRE = regexp.MustCompile(`kfdeploy-secret:([a-z0-9-]+/[A-Za-z0-9._-]+)`)

// TestUpgradeKeepsData applies the full preset of the previous release, writes rows into each
// of its databases, upgrades the same app directory to the current release (generate, apply)
// and finds every claim the same object, bound to the same volume and mounted where it was,
// every database password unchanged, and the rows there. Then it checks that a change that
// cannot be made in place (a claim's StorageClass) stops apply in preflight, before writing.
//
// kwok runs no container, so MySQL does not run: a MariaDB server (test/harness/mariadb) stands
// in for each, with its data directory on the claim's PersistentVolume (a hostPath in a
// temporary directory), reached through the database Service's ClusterIP. It is stopped for
// the upgrade, as the Recreate rollout stops the pod, and started again on the same volume.
func TestUpgradeKeepsData(t *testing.T) {
	e := e2eutil.NewEnv(t, how)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	db := fetchMariaDB(ctx, t)

	// The app directory of the previous release: its app.yaml and manifests, in a namespace of
	// this test's own, and the passwords its generate made (test values, one per placeholder).
	ns := e2eutil.UniqueName("upgrade")
	dir := filepath.Join(t.TempDir(), "app")
	prev := copySnapshot(t, dir, ns)
	passwords := writePrevSecrets(t, dir, prev)
	e.CleanupNamespace(t, ns)
	t.Cleanup(func() { e.Run(t, dir, "delete", "--purge", "--yes") })

	// Nothing serves the webhooks on this cluster (test/conformance runs the real servers in
	// their own tests); the previous release had no such params and rendered Ignore.
	e.MustRun(t, dir, "param", "set", "tf-job-operator", "webhookFailurePolicy", "Ignore")
	e.MustRun(t, dir, "param", "set", "katib", "webhookFailurePolicy", "Ignore")
	// generate stamps the app for this binary; its manifests are then swapped for the previous
	// release's, which this binary applies as the previous one did (the same field manager and
	// ApplySet labels: pkg/kube/inventory/applyset.go, pkg/kube/applyset.go at prevCommit, is unchanged).
	e.MustRun(t, dir, "generate")
	checkPasswordsKept(t, dir, passwords)
	for name, data := range prev {
		if err := os.WriteFile(filepath.Join(dir, "manifests", name), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	prevObjs := e2eutil.DecodeManifestDir(t, filepath.Join(dir, "manifests"))
	pvRoot := t.TempDir()
	for _, c := range e2eutil.AppClaims(t, prevObjs, ns) {
		createDataPV(t, e, c, filepath.Join(pvRoot, c.Name))
	}
	start := time.Now()
	e.MustRun(t, dir, "apply")
	t.Logf("previous release (%s) applied in %s", prevCommit[:7], time.Since(start).Round(time.Second))
	before := readDataState(ctx, t, e, ns, prevObjs)
	if len(before.claims) == 0 {
		t.Fatal("the previous release has no claims")
	}

	// Rows in each database, written over the Service as the application's user.
	rows := map[string]string{}
	withDatabases(ctx, t, e, db, ns, func(name, addr, user, password, database string) {
		want := "1\twritten before the upgrade by " + name + "\n2\tsecond row\n"
		if _, err := db.Query(ctx, addr, user, password, database,
			"CREATE TABLE upgrade_check (id INT PRIMARY KEY, note VARCHAR(80));\n"+
				"INSERT INTO upgrade_check VALUES (1, 'written before the upgrade by "+name+"'), (2, 'second row');"); err != nil {
			t.Fatal(err)
		}
		rows[name] = want
	}, true)

	// The upgrade: the same app directory, regenerated by the current release, applied.
	e.MustRun(t, dir, "generate")
	checkPasswordsKept(t, dir, passwords)
	curObjs := e2eutil.DecodeManifestDir(t, filepath.Join(dir, "manifests"))
	// Every object takes its new manifest in place and no claim is left behind: not even a
	// warning.
	e.MustRun(t, dir, "preflight", "--strict")
	start = time.Now()
	e.MustRun(t, dir, "apply")
	t.Logf("current release applied over it in %s", time.Since(start).Round(time.Second))
	after := readDataState(ctx, t, e, ns, curObjs)
	compareDataState(t, before, after)
	checkPruned(ctx, t, e, ns, prevObjs, curObjs)
	checkMySQLServers(ctx, t, e, ns)

	withDatabases(ctx, t, e, db, ns, func(name, addr, user, password, database string) {
		got, err := db.Query(ctx, addr, user, password, database, "SELECT id, note FROM upgrade_check ORDER BY id;")
		if err != nil {
			t.Fatalf("%s after the upgrade, with the password of its Secret: %v", name, err)
		}
		if got != rows[name] {
			t.Errorf("%s after the upgrade: rows %q, want %q", name, got, rows[name])
		}
	}, false)

	// A change that cannot be made in place stops apply before it writes anything.
	e.MustRun(t, dir, "param", "set", "modeldb", "storageClass", "elsewhere")
	e.MustRun(t, dir, "generate")
	r := e.Run(t, dir, "apply")
	if r.Code == 0 {
		t.Fatal("apply of a claim with another StorageClass succeeded, want preflight to refuse it")
	}
	if out := r.Stdout + r.Stderr; !strings.Contains(out, "PersistentVolumeClaim/modeldb-mysql") || !strings.Contains(out, "nothing was applied") {
		t.Errorf("apply output does not name the claim that cannot change, or wrote anyway:\n%s", out)
	}
	pvc, err := e.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, "modeldb-mysql", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if string(pvc.UID) != after.claims["modeldb-mysql"].uid {
		t.Errorf("claim modeldb-mysql was replaced after the refused apply")
	}
}

// copySnapshot writes the previous release's app into dir with its namespace replaced by ns,
// and returns its manifest files by name.
func copySnapshot(t *testing.T, dir, ns string) map[string][]byte {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	read := func(rel string) []byte {
		b, err := os.ReadFile(filepath.Join(upgradeSnapshot, rel))
		if err != nil {
			t.Fatalf("read the upgrade snapshot (regenerate it with scripts/upgrade-snapshot.sh): %v", err)
		}
		return []byte(strings.ReplaceAll(string(b), prevNamespace, ns))
	}
	if commit := strings.TrimSpace(string(read("COMMIT"))); commit != prevCommit {
		t.Fatalf("the snapshot is of %s, this test names %s", commit, prevCommit)
	}
	if err := os.WriteFile(filepath.Join(dir, "app.yaml"), read("app.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(upgradeSnapshot, "manifests", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in %s: %v", upgradeSnapshot, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		out[filepath.Base(f)] = read(filepath.Join("manifests", filepath.Base(f)))
	}
	return out
}

// writePrevSecrets writes secrets.yaml as the previous release's generate would have: a random
// value for every placeholder its manifests hold. It returns the values.
func writePrevSecrets(t *testing.T, dir string, manifests map[string][]byte) map[string]string {
	t.Helper()
	values := map[string]string{}
	for _, data := range manifests {
		for _, m := range placeholderRE.FindAllStringSubmatch(string(data), -1) {
			if _, ok := values[m[1]]; ok {
				continue
			}
			b := make([]byte, 24)
			if _, err := rand.Read(b); err != nil {
				t.Fatal(err)
			}
			values[m[1]] = base64.RawURLEncoding.EncodeToString(b)
		}
	}
	if len(values) == 0 {
		t.Fatal("the previous release's manifests hold no password placeholders")
	}
	data, err := yaml.Marshal(values)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "secrets.yaml"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return values
}

// checkPasswordsKept: generate kept every password the previous release stored.
func checkPasswordsKept(t *testing.T, dir string, want map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "secrets.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if err := yaml.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("secrets.yaml: %s changed or went missing: the component would be locked out of its data", k)
		}
	}
}

// createDataPV creates a class-less hostPath PV at path for the claim, reserved for it.
func createDataPV(t *testing.T, e *e2eutil.Env, c e2eutil.PVClaim, path string) {
	t.Helper()
	if err := os.MkdirAll(path, 0o700); err != nil {
		t.Fatal(err)
	}
	name := c.Namespace + "-" + c.Name
	pv := &corev1.PersistentVolume{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PersistentVolumeSpec{
			Capacity:                      corev1.ResourceList{corev1.ResourceStorage: c.Spec.Resources.Requests[corev1.ResourceStorage]},
			AccessModes:                   c.Spec.AccessModes,
			PersistentVolumeReclaimPolicy: corev1.PersistentVolumeReclaimRetain,
			StorageClassName:              "",
			ClaimRef:                      &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: c.Namespace, Name: c.Name},
			PersistentVolumeSource:        corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path}},
		},
	}
	if _, err := e.Kube.CoreV1().PersistentVolumes().Create(context.Background(), pv, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create PV %s: %v", name, err)
	}
	t.Cleanup(func() {
		_ = e.Kube.CoreV1().PersistentVolumes().Delete(context.Background(), name, metav1.DeleteOptions{})
	})
}

// withDatabases runs fn for each database with a MariaDB on the data directory of its claim's
// PV, forwarded from the Service's ClusterIP, and the credentials of its Secret. With create,
// the server's database and user are created first, as the MySQL image does at first boot.
func withDatabases(ctx context.Context, t *testing.T, e *e2eutil.Env, db mariadb.Install, ns string,
	fn func(name, addr, user, password, database string), create bool) {
	t.Helper()
	h, err := harness.New(ctx, e.Rest, harness.Options{Dir: t.TempDir(), Logf: t.Logf})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	for _, name := range upgradeDatabases {
		pvc, err := e.Kube.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pv, err := e.Kube.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pv.Spec.HostPath == nil {
			t.Fatalf("PV %s of claim %s is not the test's hostPath volume", pv.Name, name)
		}
		srv, err := db.Start(ctx, pv.Spec.HostPath.Path)
		if err != nil {
			t.Fatal(err)
		}
		secret, err := e.Kube.CoreV1().Secrets(ns).Get(ctx, name+"-secrets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		user, password, database := string(secret.Data["user"]), string(secret.Data["password"]), string(secret.Data["database"])
		if create {
			if err := srv.CreateDatabase(ctx, database, user, password); err != nil {
				t.Fatal(err)
			}
		}
		svc, err := e.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Forward(ctx, ns, name, 3306, srv.Addr()); err != nil {
			t.Fatal(err)
		}
		fn(name, net.JoinHostPort(svc.Spec.ClusterIP, "3306"), user, password, database)
		if err := srv.Stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// dataState is what must survive an upgrade.
type dataState struct {
	claims map[string]claimState
	// passwords: Secret name and key -> value (compared, never printed).
	passwords map[string]string
	// clusterIPs of the database Services.
	clusterIPs map[string]string
}

type claimState struct {
	uid, volume, volumeUID string
	phase                  corev1.PersistentVolumeClaimPhase
	// mounts: "Kind/name container mountPath" of every workload of the manifests that mounts it.
	mounts []string
}

func readDataState(ctx context.Context, t *testing.T, e *e2eutil.Env, ns string, objs []*unstructured.Unstructured) dataState {
	t.Helper()
	st := dataState{claims: map[string]claimState{}, passwords: map[string]string{}, clusterIPs: map[string]string{}}
	pvcs, err := e.Kube.CoreV1().PersistentVolumeClaims(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	mounts := claimMounts(t, e, ctx, ns, objs)
	for _, c := range pvcs.Items {
		cs := claimState{uid: string(c.UID), volume: c.Spec.VolumeName, phase: c.Status.Phase, mounts: mounts[c.Name]}
		if pv, err := e.Kube.CoreV1().PersistentVolumes().Get(ctx, c.Spec.VolumeName, metav1.GetOptions{}); err == nil {
			cs.volumeUID = string(pv.UID)
		}
		st.claims[c.Name] = cs
	}
	for _, name := range upgradeDatabases {
		s, err := e.Kube.CoreV1().Secrets(ns).Get(ctx, name+"-secrets", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"password", "root-password", "user", "database"} {
			st.passwords[s.Name+"/"+k] = string(s.Data[k])
		}
		svc, err := e.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		st.clusterIPs[name] = svc.Spec.ClusterIP
	}
	return st
}

// claimMounts reads, from the live workloads of the manifests, which container mounts which
// claim where.
func claimMounts(t *testing.T, e *e2eutil.Env, ctx context.Context, ns string, objs []*unstructured.Unstructured) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	add := func(kind, name string, spec corev1.PodSpec) {
		claimOf := map[string]string{}
		for _, v := range spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				claimOf[v.Name] = v.PersistentVolumeClaim.ClaimName
			}
		}
		for _, c := range spec.Containers {
			for _, m := range c.VolumeMounts {
				if claim, ok := claimOf[m.Name]; ok {
					out[claim] = append(out[claim], kind+"/"+name+" "+c.Name+" "+m.MountPath)
				}
			}
		}
	}
	for _, o := range objs {
		switch manifest.IDOf(o).Kind {
		case "Deployment":
			d, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			add("Deployment", d.Name, d.Spec.Template.Spec)
		case "StatefulSet":
			s, err := e.Kube.AppsV1().StatefulSets(ns).Get(ctx, o.GetName(), metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			add("StatefulSet", s.Name, s.Spec.Template.Spec)
		}
	}
	for k := range out {
		sort.Strings(out[k])
	}
	return out
}

func compareDataState(t *testing.T, before, after dataState) {
	t.Helper()
	for name, b := range before.claims {
		a, ok := after.claims[name]
		switch {
		case !ok:
			t.Errorf("claim %s is gone after the upgrade", name)
		case a.uid != b.uid:
			t.Errorf("claim %s was replaced (uid %s, was %s)", name, a.uid, b.uid)
		case a.volume != b.volume || a.volumeUID != b.volumeUID || b.volumeUID == "":
			t.Errorf("claim %s: volume %s (%s), was %s (%s)", name, a.volume, a.volumeUID, b.volume, b.volumeUID)
		case a.phase != corev1.ClaimBound:
			t.Errorf("claim %s is %s after the upgrade, want Bound", name, a.phase)
		case len(b.mounts) == 0:
			t.Errorf("claim %s: no workload of the previous release mounted it", name)
		case !slices.Equal(a.mounts, b.mounts):
			t.Errorf("claim %s is mounted at %v after the upgrade, was %v: the data would not be found", name, a.mounts, b.mounts)
		}
	}
	for k, v := range before.passwords {
		if after.passwords[k] != v {
			t.Errorf("Secret %s changed in the upgrade: the database was initialised with the old value", k)
		}
	}
	for k, v := range before.clusterIPs {
		if after.clusterIPs[k] != v {
			t.Errorf("Service %s: ClusterIP %s, was %s (recreated)", k, after.clusterIPs[k], v)
		}
	}
}

// checkPruned: every object of the previous release that the current one no longer has is
// gone, except claims, which apply never prunes.
func checkPruned(ctx context.Context, t *testing.T, e *e2eutil.Env, ns string, prev, cur []*unstructured.Unstructured) {
	t.Helper()
	keep := map[manifest.ID]bool{}
	for _, o := range cur {
		keep[manifest.IDOf(o).Scoped(o.GetNamespace() != "", ns)] = true
	}
	for _, o := range prev {
		id := manifest.IDOf(o).Scoped(o.GetNamespace() != "", ns)
		if keep[id] || id.Kind == "PersistentVolumeClaim" {
			continue
		}
		var err error
		switch id.Kind {
		case "Deployment":
			_, err = e.Kube.AppsV1().Deployments(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
		case "Service":
			_, err = e.Kube.CoreV1().Services(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
		case "Secret":
			_, err = e.Kube.CoreV1().Secrets(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
		case "ServiceAccount":
			_, err = e.Kube.CoreV1().ServiceAccounts(id.Namespace).Get(ctx, id.Name, metav1.GetOptions{})
		case "ClusterRole":
			_, err = e.Kube.RbacV1().ClusterRoles().Get(ctx, id.Name, metav1.GetOptions{})
		default:
			continue
		}
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s of the previous release is not in the current one but was not pruned (%v)", id, err)
		}
	}
}

// checkMySQLServers: the upgraded MySQL servers run 8.4 with what its predecessor's data
// directories need, on the same data directory.
func checkMySQLServers(ctx context.Context, t *testing.T, e *e2eutil.Env, ns string) {
	t.Helper()
	for _, name := range upgradeDatabases {
		d, err := e.Kube.AppsV1().Deployments(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		c := d.Spec.Template.Spec.Containers[0]
		if !strings.HasPrefix(c.Image, "docker.io/library/mysql:8.4.") {
			t.Errorf("%s runs %s after the upgrade, want MySQL 8.4", name, c.Image)
		}
		if !slices.Contains(c.Args, "--mysql-native-password=ON") || !slices.Contains(c.Args, "/var/lib/mysql/datadir") {
			t.Errorf("%s args %v: want --mysql-native-password=ON and --datadir /var/lib/mysql/datadir", name, c.Args)
		}
		for _, a := range c.Args {
			if strings.HasPrefix(a, "--default-authentication-plugin") {
				t.Errorf("%s: %s was removed in MySQL 8.4: the server would not start", name, a)
			}
		}
	}
}
