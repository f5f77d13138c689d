# JupyterHub configuration of kfdeploy's jupyterhub component. The component renders its
# parameters into settings.json next to this file; secrets arrive as environment variables.
import json
import os
import sys

c = get_config()  # noqa: F821 (provided by JupyterHub)

with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "settings.json")) as f:
    settings = json.load(f)
namespace = os.environ["POD_NAMESPACE"]

# The hub: API for the proxy and the notebook servers on 8081; its state (sqlite database, cookie
# secret) lives on the hub's volume.
c.JupyterHub.hub_bind_url = "http://:8081"
c.JupyterHub.hub_connect_url = "http://%s.%s.svc:8081" % (settings["hubService"], namespace)
c.JupyterHub.db_url = "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "/srv/jupyterhub/jupyterhub_cookie_secret"
c.JupyterHub.cleanup_servers = False  # notebook servers outlive hub restarts

# The proxy runs in its own Deployment; hub and proxy share CONFIGPROXY_AUTH_TOKEN.
c.ConfigurableHTTPProxy.should_start = False
c.ConfigurableHTTPProxy.api_url = "http://%s.%s.svc:8001" % (settings["proxyApiService"], namespace)

sign_in = settings["signIn"]
c.Authenticator.admin_users = set(settings["adminUsers"])
if sign_in["mode"] == "gateway":
    # Users sign in at the gateway (oauth2-proxy) and the hub signs them in as that identity,
    # which it asks the sign-in proxy for (kfdeploy_gateway_auth.py, next to this file). Every
    # route to the hub requires the gateway's sign-in, so every user it lets in may use the hub;
    # each uses only their own server (JupyterHub's default roles), admins everyone's.
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    c.JupyterHub.authenticator_class = "kfdeploy_gateway_auth.GatewayAuthenticator"
    c.GatewayAuthenticator.auth_url = sign_in["authURL"]
    c.GatewayAuthenticator.admin_groups = sign_in["adminGroups"]
    c.Authenticator.allow_all = True
    # How often a hub session is checked against the gateway session (seconds).
    c.Authenticator.auth_refresh_age = 60
else:
    # Without the gateway's sign-in: any user name with the shared password that kfdeploy
    # generated (SharedPasswordAuthenticator, JupyterHub 5.3 and later). The user names in
    # adminUsers sign in with the separate admin password instead, which must be at least 32
    # characters long (jupyterhub/authenticators/shared.py); it is set only when there are admin
    # users, since the authenticator warns about an admin password without them.
    c.JupyterHub.authenticator_class = "shared-password"
    c.SharedPasswordAuthenticator.user_password = os.environ["KFDEPLOY_USER_PASSWORD"]
    c.Authenticator.allow_all = True
    if settings["adminUsers"]:
        c.SharedPasswordAuthenticator.admin_password = os.environ["KFDEPLOY_ADMIN_PASSWORD"]

# The idle culler stops notebook servers that have been idle for cull.timeout seconds, so that
# their pods - and the GPUs they hold - are released. It runs as a hub-managed service (the hub
# starts it and hands it an API token) with only the scopes it needs.
cull = settings["cull"]
if cull["enabled"]:
    c.JupyterHub.services = [
        {
            "name": "jupyterhub-idle-culler",
            "command": [
                "python3",
                "-m",
                "jupyterhub_idle_culler",
                "--url=http://127.0.0.1:8081/hub/api",
                "--timeout=%d" % cull["timeout"],
                "--cull-every=%d" % cull["every"],
                "--max-age=%d" % cull["maxAge"],
            ],
        }
    ]
    c.JupyterHub.load_roles = [
        {
            "name": "jupyterhub-idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["jupyterhub-idle-culler"],
        }
    ]

# Each user's notebook server is a pod of this namespace with a volume of its own.
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = namespace
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
# The image when no profile applies, instead of KubeSpawner's own default (the latest tag of
# quay.io/jupyterhub/singleuser), which a mirror could not rewrite.
c.KubeSpawner.image = settings["image"]
c.KubeSpawner.port = 8888
c.KubeSpawner.start_timeout = 600
c.KubeSpawner.http_timeout = 120
c.KubeSpawner.uid = 1000
c.KubeSpawner.fs_gid = 100
c.KubeSpawner.allow_privilege_escalation = False
c.KubeSpawner.container_security_context = {
    "runAsNonRoot": True,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}
c.KubeSpawner.service_account = settings["userServiceAccount"]
# The app's pull secrets (spec.images.pullSecrets of app.yaml), for the notebook images.
if settings.get("imagePullSecrets"):
    c.KubeSpawner.image_pull_secrets = settings["imagePullSecrets"]
c.KubeSpawner.automount_service_account_token = False
c.KubeSpawner.extra_labels = settings["userPodLabels"]
c.KubeSpawner.storage_pvc_ensure = True
c.KubeSpawner.pvc_name_template = "claim-{username}{servername}"
c.KubeSpawner.storage_capacity = settings["storageSize"]
c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
c.KubeSpawner.storage_extra_labels = settings["userPodLabels"]
if settings["storageClass"] is not None:
    # "" binds the claims to pre-created volumes without a class.
    c.KubeSpawner.storage_class = settings["storageClass"]
c.KubeSpawner.volumes = [{"name": "home", "persistentVolumeClaim": {"claimName": "{pvc_name}"}}]
c.KubeSpawner.volume_mounts = [{"name": "home", "mountPath": "/home/jovyan"}]


def profile(p):
    """A spawner profile (image, CPU, memory, GPUs) as KubeSpawner overrides."""
    override = {
        "image": p["image"],
        "cpu_guarantee": p["cpu"],
        "mem_guarantee": p["memory"],
        "mem_limit": p["memory"],
    }
    if p.get("cpuLimit") is not None:
        override["cpu_limit"] = p["cpuLimit"]
    if p.get("gpus", 0) > 0:
        gpus = {settings["gpuResource"]: str(p["gpus"])}
        override["extra_resource_guarantees"] = gpus
        override["extra_resource_limits"] = gpus
        # GPU nodes are commonly tainted so that only GPU workloads land there.
        override["tolerations"] = [{"key": settings["gpuResource"], "operator": "Exists", "effect": "NoSchedule"}]
    return {
        "display_name": p["displayName"],
        "description": p.get("description", ""),
        "default": p.get("default", False),
        "kubespawner_override": override,
    }


c.KubeSpawner.profile_list = [profile(p) for p in settings["profiles"]]
