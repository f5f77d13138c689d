// Command katib-report-metrics reports a trial's metrics to Katib's db-manager through its gRPC
// API (ReportObservationLog), as Katib's metrics collector does from inside a trial pod, and
// reads them back (GetObservationLog). The conformance tests use it because trial containers
// do not run on the local cluster, so no collector ever reports.
//
//	katib-report-metrics -db HOST:PORT -trial NAME -metric accuracy=0.91 [-metric loss=0.2]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	api "github.com/kubeflow/katib/pkg/apis/manager/v1beta1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type metrics []*api.Metric

func (m *metrics) String() string { return fmt.Sprint(*m) }

func (m *metrics) Set(v string) error {
	name, value, ok := strings.Cut(v, "=")
	if !ok || name == "" || value == "" {
		return fmt.Errorf("metric %q: want NAME=VALUE", v)
	}
	*m = append(*m, &api.Metric{Name: name, Value: value})
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "katib-report-metrics:", err)
		os.Exit(1)
	}
}

func run() error {
	db := flag.String("db", "", "db-manager address HOST:PORT")
	trial := flag.String("trial", "", "trial name")
	timeout := flag.Duration("timeout", 30*time.Second, "give up after this long")
	var ms metrics
	flag.Var(&ms, "metric", "NAME=VALUE to report (repeatable)")
	flag.Parse()
	if *db == "" || *trial == "" || len(ms) == 0 {
		return errors.New("-db, -trial and at least one -metric are required")
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	conn, err := grpc.NewClient(*db, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connect to db-manager %s: %w", *db, err)
	}
	defer conn.Close()
	client := api.NewDBManagerClient(conn)

	now := time.Now().UTC().Format(time.RFC3339Nano)
	var logs []*api.MetricLog
	for _, m := range ms {
		logs = append(logs, &api.MetricLog{TimeStamp: now, Metric: m})
	}
	if _, err := client.ReportObservationLog(ctx, &api.ReportObservationLogRequest{
		TrialName:      *trial,
		ObservationLog: &api.ObservationLog{MetricLogs: logs},
	}, grpc.WaitForReady(true)); err != nil {
		return fmt.Errorf("report observation log of trial %s to %s: %w", *trial, *db, err)
	}
	reply, err := client.GetObservationLog(ctx, &api.GetObservationLogRequest{TrialName: *trial})
	if err != nil {
		return fmt.Errorf("read back observation log of trial %s from %s: %w", *trial, *db, err)
	}
	got := len(reply.GetObservationLog().GetMetricLogs())
	if got < len(ms) {
		return fmt.Errorf("trial %s: db-manager holds %d metric logs after reporting %d", *trial, got, len(ms))
	}
	fmt.Printf("trial %s: reported %d metrics; db-manager holds %d metric logs\n", *trial, len(ms), got)
	return nil
}
