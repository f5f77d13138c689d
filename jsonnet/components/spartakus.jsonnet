// spartakus: anonymous usage reporting, as in Kubeflow v0.3 - off unless enabled: true. The
// volunteer periodically sends the Kubernetes version and the count and kind of nodes (no names,
// no workloads) under a random ID generated for this app. The Spartakus project is retired
// (github.com/kubernetes-retired/spartakus, last release v1.1.0 of March 2017, last commit
// December 2018); the component stays for v0.3 parity and stays off unless asked for.
local images = import 'kfdeploy/images.libsonnet';
local k = import 'kfdeploy/k.libsonnet';

{
  description: 'Spartakus anonymous usage reporting (renders nothing unless enabled: true)',
  params: {
    enabled: { default: false, description: 'Send anonymous usage reports' },
    image: { default: images.spartakus, description: 'Spartakus image' },
    database: { default: 'https://stats-collector.kubeflow.org', description: 'Collector the reports go to (the Kubeflow v0.3 collector by default)' },
  },
  secrets: {
    reportingId: { description: 'Random ID that the usage reports of this app carry (only used when enabled)' },
  },
  render(p, env)::
    if !p.enabled then [] else
      local ns = env.namespace;
      local name = 'spartakus-volunteer';
      local labels = k.labels('spartakus', name);
      local selector = k.selector('spartakus', name);
      [
        k.serviceAccount(name, ns, labels),
        // Cluster scope, read-only: the report lists the cluster's nodes (cluster-scoped objects;
        // pkg/volunteer/kubernetes.go@v1.1.0 lists them and reads the server version, which
        // every client may).
        k.clusterAccess(name, ns, [k.rule([''], ['nodes'], ['list'])], labels),
        k.passwordSecret(name, ns, { 'reporting-id': env.secrets.reportingId }, labels),
        k.deployment(name, ns, selector, {
          serviceAccountName: name,
          securityContext: k.podSecurityContext(),
          containers: [{
            name: 'volunteer',
            image: p.image,
            args: ['volunteer', '--cluster-id=$(REPORTING_ID)', '--database=' + p.database],
            env: [k.secretEnv('REPORTING_ID', name, 'reporting-id')],
            resources: k.resources('10m', '32Mi', memoryLimit='64Mi'),
            // No probes: the volunteer serves nothing; it reports on a timer and exits on
            // failure, which restarts it.
            securityContext: k.securityContext(runAsUser=65534),
          }],
        }, labels=labels),
      ],
}
