// Command selftest is the program the harness's end-to-end test runs as if it
// were a controller of the cluster: it authenticates with the kubeconfig the
// harness gives it, dials a Service by its DNS name, serves HTTPS with a
// certificate from a Secret volume, and logs what it found.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	listen := flag.String("listen", ":8443", "HTTPS address")
	certDir := flag.String("cert-dir", "", "directory with tls.crt and tls.key")
	greetingFile := flag.String("greeting-file", "", "file whose content the server returns")
	dial := flag.String("dial", "", "URL to GET once at start (a Service by DNS name)")
	flag.Parse()
	log.SetFlags(0)

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		log.Fatalf("kubeconfig: %v", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		log.Fatalf("client: %v", err)
	}
	r, err := kube.AuthenticationV1().SelfSubjectReviews().Create(ctx, &authenticationv1.SelfSubjectReview{}, metav1.CreateOptions{})
	if err != nil {
		log.Fatalf("selfsubjectreview: %v", err)
	}
	log.Printf("whoami: %s", r.Status.UserInfo.Username)
	// A request the ServiceAccount has no RBAC for: its error must show up
	// in the harness's Forbidden().
	if _, err := kube.CoreV1().Secrets("kube-system").List(ctx, metav1.ListOptions{}); err != nil {
		log.Printf("list secrets: %v", err)
	}
	if err := os.WriteFile("/tmp/selftest-scratch", []byte("x"), 0o644); err != nil {
		log.Fatalf("private /tmp: %v", err)
	}
	if *dial != "" {
		resp, err := http.Get(*dial)
		if err != nil {
			log.Fatalf("dial %s: %v", *dial, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		log.Printf("dial: %s", body)
	}
	greeting, err := os.ReadFile(*greetingFile)
	if err != nil {
		log.Fatalf("greeting: %v", err)
	}
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s from %s", greeting, os.Getenv("POD_NAME"))
	})
	log.Printf("serving on %s", *listen)
	err = http.ListenAndServeTLS(*listen, filepath.Join(*certDir, "tls.crt"), filepath.Join(*certDir, "tls.key"), nil)
	log.Fatalf("serve: %v", err)
}
