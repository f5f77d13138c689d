// Command katib-suggestion-goptuna serves Katib's goptuna suggestion algorithms (random, tpe,
// cmaes, sobol: github.com/kubeflow/katib/pkg/suggestion/v1beta1/goptuna) over Katib's
// Suggestion gRPC API, with the gRPC health service, as Katib's own goptuna service does. It
// differs in one thing: the listen address is a flag (-listen, default upstream's fixed
// 0.0.0.0:6789), so that the conformance harness can run several services side by side on one
// host.
package main

import (
	"context"
	"flag"
	"log"
	"net"

	health "github.com/kubeflow/katib/pkg/apis/manager/health"
	api "github.com/kubeflow/katib/pkg/apis/manager/v1beta1"
	goptuna "github.com/kubeflow/katib/pkg/suggestion/v1beta1/goptuna"
	"google.golang.org/grpc"
)

// serving answers every health check with SERVING: the service has no dependency to check.
type serving struct{}

func (serving) Check(context.Context, *health.HealthCheckRequest) (*health.HealthCheckResponse, error) {
	return &health.HealthCheckResponse{Status: health.HealthCheckResponse_SERVING}, nil
}

func main() {
	listen := flag.String("listen", "0.0.0.0:6789", "address to serve the Suggestion API on")
	flag.Parse()
	l, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatalf("goptuna suggestion service: listen on %s: %v", *listen, err)
	}
	srv := grpc.NewServer()
	api.RegisterSuggestionServer(srv, goptuna.NewSuggestionService())
	health.RegisterHealthServer(srv, serving{})
	log.Printf("goptuna suggestion service (random, tpe, cmaes, sobol) serving on %s", l.Addr())
	if err := srv.Serve(l); err != nil {
		log.Fatalf("goptuna suggestion service: %v", err)
	}
}
