// Every container image the built-in components use, pinned by version tag. Components take
// these as parameter defaults (so a mirror can be set per app); docs/components.md lists them
// with their upstream projects, and a test checks that the two agree.
{
  // ambassador: Emissary-ingress (github.com/emissary-ingress/emissary), Ambassador's successor.
  // From v4 the project publishes on GHCR only, tagged without the leading v
  // (charts/emissary-ingress/values.yaml and build-aux/charts.mk at v4.1.0).
  emissary: 'ghcr.io/emissary-ingress/emissary:4.1.0',

  // gateway: Traefik Proxy (github.com/traefik/traefik), the official image on Docker Hub, and
  // oauth2-proxy (github.com/oauth2-proxy/oauth2-proxy), published on quay.io: the versions the
  // conformance harness builds from the Go module proxy (test/tools/traefik, test/tools/oauth2-proxy).
  traefik: 'docker.io/library/traefik:v3.7.13',
  oauth2Proxy: 'quay.io/oauth2-proxy/oauth2-proxy:v7.15.6',

  // argo: Argo Workflows (github.com/argoproj/argo-workflows).
  argoController: 'quay.io/argoproj/workflow-controller:v3.7.18',
  argoServer: 'quay.io/argoproj/argocli:v3.7.18',
  argoExecutor: 'quay.io/argoproj/argoexec:v3.7.18',

  // centraldashboard: Kubeflow Central Dashboard, moved to github.com/kubeflow/dashboard
  // (components/centraldashboard/manifests/kustomize/base/kustomization.yaml@v2.0.0).
  centralDashboard: 'ghcr.io/kubeflow/dashboard/dashboard:v2.0.0',

  // jupyterhub: Zero to JupyterHub images (github.com/jupyterhub/zero-to-jupyterhub-k8s,
  // github.com/jupyterhub/configurable-http-proxy); notebooks from github.com/jupyter/docker-stacks.
  // Zero to JupyterHub 4.4.0: JupyterHub 5.5.0, KubeSpawner 7.0.0, jupyterhub-idle-culler 1.4.0
  // (images/hub/requirements.txt@4.4.0); the proxy tag is the chart's (jupyterhub/values.yaml@4.4.0).
  jupyterhub: 'quay.io/jupyterhub/k8s-hub:4.4.0',
  configurableHttpProxy: 'quay.io/jupyterhub/configurable-http-proxy:5.2.0',
  notebookScipy: 'quay.io/jupyter/scipy-notebook:2024-12-09',
  notebookTensorflow: 'quay.io/jupyter/tensorflow-notebook:2024-12-09',
  notebookPytorch: 'quay.io/jupyter/pytorch-notebook:2024-12-09',

  // katib: Katib v0.19.0 (github.com/kubeflow/katib), as its release manifests name the images
  // (manifests/v1beta1/installs/katib-standalone/kustomization.yaml and katib-config.yaml at
  // v0.19.0; Katib publishes on ghcr.io from v0.18), and MySQL (github.com/docker-library/mysql).
  katibController: 'ghcr.io/kubeflow/katib/katib-controller:v0.19.0',
  katibDbManager: 'ghcr.io/kubeflow/katib/katib-db-manager:v0.19.0',
  katibUi: 'ghcr.io/kubeflow/katib/katib-ui:v0.19.0',
  katibFileMetricsCollector: 'ghcr.io/kubeflow/katib/file-metrics-collector:v0.19.0',
  katibTfEventMetricsCollector: 'ghcr.io/kubeflow/katib/tfevent-metrics-collector:v0.19.0',
  katibEarlyStoppingMedianStop: 'ghcr.io/kubeflow/katib/earlystopping-medianstop:v0.19.0',
  // The training image of the trial templates the UI offers (controller/trial-templates.yaml@v0.19.0).
  katibTrialPytorchMnist: 'ghcr.io/kubeflow/katib/pytorch-mnist-cpu:v0.19.0',
  // Suggestion service image per algorithm, as in Katib's katib-config; the controller starts one
  // suggestion Deployment + Service per Experiment from these. goptuna (a Go service) also
  // serves random and tpe (pkg/suggestion/v1beta1/goptuna@v0.19.0); upstream uses hyperopt.
  katibSuggestions: {
    random: 'ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0',
    tpe: 'ghcr.io/kubeflow/katib/suggestion-hyperopt:v0.19.0',
    grid: 'ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0',
    'multivariate-tpe': 'ghcr.io/kubeflow/katib/suggestion-optuna:v0.19.0',
    cmaes: 'ghcr.io/kubeflow/katib/suggestion-goptuna:v0.19.0',
    sobol: 'ghcr.io/kubeflow/katib/suggestion-goptuna:v0.19.0',
    hyperband: 'ghcr.io/kubeflow/katib/suggestion-hyperband:v0.19.0',
    bayesianoptimization: 'ghcr.io/kubeflow/katib/suggestion-skopt:v0.19.0',
  },
  // MySQL 8.4 LTS (8.4/Dockerfile.oracle of github.com/docker-library/mysql@99f090f, 2026-06-16;
  // 8.0 left that repository as end of life at b6c1f39, 2026-04-22). The 9.x LTS line removed
  // mysql_native_password, which data directories of earlier releases need (mysql.libsonnet).
  mysql: 'docker.io/library/mysql:8.4.10',

  // modeldb: the Kubeflow Model Registry (github.com/kubeflow/model-registry), ModelDB's successor
  // in Kubeflow; from v0.3 it keeps its data in MySQL itself (no ML Metadata server).
  // manifests/kustomize/base/kustomization.yaml@v0.3.8.
  modelRegistry: 'ghcr.io/kubeflow/model-registry/server:v0.3.8',

  // tf-job-operator: Kubeflow Training Operator v1.9.4 (github.com/kubeflow/training-operator,
  // manifests/overlays/standalone/kustomization.yaml@v1.9.4), and the init container image it
  // adds to PyTorchJob workers (pkg/config/config.go@v1.9.4 defaults to alpine:3.10).
  trainingOperator: 'ghcr.io/kubeflow/training-v1/training-operator:v1-93c5489',
  trainingOperatorPytorchInit: 'docker.io/library/alpine:3.10',

  // tf-job-dashboard: Headlamp (github.com/kubernetes-sigs/headlamp), a Kubernetes SIG UI project.
  // The image keeps its name under the new organisation
  // (charts/headlamp/tests/expected_templates/default.yaml@v0.45.0).
  headlamp: 'ghcr.io/headlamp-k8s/headlamp:v0.45.0',

  // k8s-dashboard: Kubernetes Dashboard 7 (github.com/kubernetes/dashboard), one image per module
  // (charts/kubernetes-dashboard/values.yaml@kubernetes-dashboard-7.13.0).
  k8sDashboardWeb: 'docker.io/kubernetesui/dashboard-web:1.7.0',
  k8sDashboardApi: 'docker.io/kubernetesui/dashboard-api:1.13.0',
  k8sDashboardAuth: 'docker.io/kubernetesui/dashboard-auth:1.3.0',
  k8sDashboardMetricsScraper: 'docker.io/kubernetesui/dashboard-metrics-scraper:1.2.2',

  // spartakus: Spartakus usage reporting (github.com/kubernetes-retired/spartakus), as Kubeflow v0.3 used it.
  // Retired; v1.1.0 (March 2017) is its last release, built by its Makefile@v1.1.0.
  spartakus: 'gcr.io/google_containers/spartakus-amd64:v1.1.0',

  // nvidia-device-plugin: NVIDIA device plugin (github.com/NVIDIA/k8s-device-plugin).
  // deployments/static/nvidia-device-plugin.yml@v0.20.0.
  nvidiaDevicePlugin: 'nvcr.io/nvidia/k8s-device-plugin:v0.20.0',

  // nfs-provisioner: NFS subdir external provisioner (github.com/kubernetes-sigs/nfs-subdir-external-provisioner).
  // Still the newest image: deploy/deployment.yaml@nfs-subdir-external-provisioner-4.0.18.
  nfsProvisioner: 'registry.k8s.io/sig-storage/nfs-subdir-external-provisioner:v4.0.2',
}
