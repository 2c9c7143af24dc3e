"""Upstream facts about the control plane the engine tier runs: Kubernetes, its etcd, and kwok's fake nodes.

Read at kubernetes/kubernetes v1.36.3 (staging modules at v0.36.3), etcd-io/etcd v3.6.8 and
kubernetes-sigs/kwok v0.8.0, the versions tools/ builds. tests/engine/cluster.py depends on each of these.
"""

from __future__ import annotations

from upstream_facts import Fact

K8S = "kubernetes/kubernetes"
KWOK = "kubernetes-sigs/kwok"
TAG = "v1.36.3"

FACTS = [
    # ------------------------------------------------------------------------------------------ StatefulSet
    Fact(
        key="kubernetes.statefulset.pod_identity",
        statement="The StatefulSet controller names each pod <statefulset name>-<ordinal> and sets the pod's "
        "hostname to that name; ordinals run from spec.ordinals.start (0 when unset) to start + replicas - 1. "
        "The monitor takes its shard index from the hostname's trailing ordinal",
        source=f"{K8S} pkg/controller/statefulset/stateful_set_utils.go@{TAG}",
        value={"pod_name": "{name}-{ordinal}", "hostname": "pod name", "first_ordinal": 0},
    ),
    # --------------------------------------------------------------------------------------- kube-apiserver
    Fact(
        key="kubernetes.version",
        statement="The API server reports the gitVersion linked in by the build's ldflags "
        "(k8s.io/component-base/version.gitVersion), here the pinned release",
        source=f"{K8S} hack/lib/version.sh@{TAG}",
        value="v1.36.3",
    ),
    Fact(
        key="kube_apiserver.default_admission_plugins",
        statement="Without --enable/--disable-admission-plugins the API server runs these admission plugins, "
        "PodSecurity and DefaultStorageClass among them",
        source=f"{K8S} pkg/kubeapiserver/options/plugins.go@{TAG}",
        # DefaultOffAdmissionPlugins' defaultOnPlugins, in its order (some act only behind a feature gate).
        value=[
            "NamespaceLifecycle",
            "LimitRanger",
            "ServiceAccount",
            "DefaultStorageClass",
            "PersistentVolumeClaimResize",
            "DefaultTolerationSeconds",
            "MutatingAdmissionWebhook",
            "ValidatingAdmissionWebhook",
            "ResourceQuota",
            "StorageObjectInUseProtection",
            "PodGroupProtection",
            "Priority",
            "TaintNodesByCondition",
            "RuntimeClass",
            "CertificateApproval",
            "CertificateSigning",
            "ClusterTrustBundleAttest",
            "CertificateSubjectRestriction",
            "DefaultIngressClass",
            "PodSecurity",
            "PodTopologyLabels",
            "MutatingAdmissionPolicy",
            "ValidatingAdmissionPolicy",
            "PodGroupWorkloadExists",
            "NodeDeclaredFeatureValidator",
            "JobValidation",
            "PodResizeValidator",
        ],
    ),
    Fact(
        key="kube_apiserver.authorization_default",
        statement="Without --authorization-mode or --authorization-config the API server authorizes with "
        "AlwaysAllow, so the fixture must ask for Node,RBAC (kubeadm's default) itself",
        source=f"{K8S} pkg/kubeapiserver/options/authorization.go@{TAG}",
        value="AlwaysAllow",
    ),
    Fact(
        key="kubeadm.apiserver_authorization_mode",
        statement="kubeadm runs the API server with authorization mode Node,RBAC unless told otherwise",
        source=f"{K8S} cmd/kubeadm/app/phases/controlplane/manifests.go@{TAG}",
        value="Node,RBAC",
    ),
    Fact(
        key="kubeadm.apiserver_allow_privileged",
        statement="kubeadm runs the API server with --allow-privileged=true (the flag's default is false), "
        "leaving the restriction of privileged Pods to Pod Security",
        source=f"{K8S} cmd/kubeadm/app/phases/controlplane/manifests.go@{TAG}",
        value="true",
    ),
    Fact(
        key="kubeadm.front_proxy_flags",
        statement="kubeadm configures the aggregation layer with a front-proxy CA, a front-proxy-client "
        "certificate and the X-Remote-User / X-Remote-Group / X-Remote-Extra- request headers",
        source=f"{K8S} cmd/kubeadm/app/phases/controlplane/manifests.go@{TAG}",
        value={
            "requestheader-allowed-names": "front-proxy-client",
            "requestheader-username-headers": "X-Remote-User",
            "requestheader-group-headers": "X-Remote-Group",
            "requestheader-extra-headers-prefix": "X-Remote-Extra-",
        },
    ),
    Fact(
        key="kubeadm.service_subnet",
        statement="kubeadm's default Service range is 10.96.0.0/12; the kubernetes Service takes its first "
        "address, which the serving certificate must name",
        source=f"{K8S} cmd/kubeadm/app/apis/kubeadm/v1beta4/defaults.go@{TAG}",
        value="10.96.0.0/12",
    ),
    Fact(
        key="kube_apiserver.x509_user",
        statement="A client certificate signed by --client-ca-file authenticates as the subject's CommonName "
        "with the subject's Organizations as groups",
        source=f"{K8S} staging/src/k8s.io/apiserver/pkg/authentication/request/x509/x509.go@{TAG}",
        value={"user": "CommonName", "groups": "Organization"},
    ),
    Fact(
        key="rbac.bootstrap_bindings",
        statement="The bootstrap RBAC policy binds cluster-admin to the group system:masters and the "
        "controller manager's and scheduler's roles to the users of those names",
        source=f"{K8S} plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go@{TAG}",
        value={
            "cluster-admin": "system:masters",
            "system:kube-controller-manager": "system:kube-controller-manager",
            "system:kube-scheduler": "system:kube-scheduler",
        },
    ),
    Fact(
        key="pod_security.labels",
        statement="Pod Security reads a namespace's levels from the labels "
        "pod-security.kubernetes.io/enforce and pod-security.kubernetes.io/warn",
        source=f"{K8S} staging/src/k8s.io/pod-security-admission/api/constants.go@{TAG}",
        value={"enforce": "pod-security.kubernetes.io/enforce", "warn": "pod-security.kubernetes.io/warn"},
    ),
    Fact(
        key="pod_security.messages",
        statement="Pod Security refuses an enforce violation with "
        "'violates PodSecurity \"<level>:<version>\"' and answers a warn violation with a warning "
        "'would violate PodSecurity ...'",
        source=f"{K8S} staging/src/k8s.io/pod-security-admission/admission/admission.go@{TAG}",
        value={
            "refused": 'violates PodSecurity "restricted:latest"',
            "warning": 'would violate PodSecurity "restricted:latest"',
        },
    ),
    Fact(
        key="node.status_kept_on_create",
        statement="Creating a Node keeps the status it is sent (PrepareForCreate only drops disabled "
        "fields), so fake Nodes are created with their allocatable and addresses",
        source=f"{K8S} pkg/registry/core/node/strategy.go@{TAG}",
        value=True,
    ),
    Fact(
        key="node.not_ready_taint",
        statement="The TaintNodesByCondition admission plugin taints every new Node "
        "node.kubernetes.io/not-ready:NoSchedule until the node lifecycle controller sees it Ready",
        source=f"{K8S} plugin/pkg/admission/nodetaint/admission.go@{TAG}",
        value="node.kubernetes.io/not-ready",
    ),
    Fact(
        key="storage.default_class_annotation",
        statement="The DefaultStorageClass admission plugin gives claims without a class the StorageClass "
        "annotated storageclass.kubernetes.io/is-default-class=true",
        source=f"{K8S} pkg/apis/storage/util/helpers.go@{TAG}",
        value="storageclass.kubernetes.io/is-default-class",
    ),
    Fact(
        key="storage.no_provisioner",
        statement="The provisioner name kubernetes.io/no-provisioner marks a StorageClass whose claims only "
        "bind to existing PersistentVolumes",
        source=f"{K8S} staging/src/k8s.io/component-helpers/storage/volume/pv_helpers.go@{TAG}",
        value="kubernetes.io/no-provisioner",
    ),
    # ------------------------------------------------------------------------------ controller manager
    Fact(
        key="kube_controller_manager.controllers_default",
        statement="--controllers defaults to '*', every controller not disabled by default; only "
        "bootstrap-signer, token-cleaner and selinux-warning are off by default",
        source=f"{K8S} staging/src/k8s.io/controller-manager/config/v1alpha1/defaults.go@{TAG}",
        value={
            "default": "*",
            "disabled_by_default": [
                "bootstrap-signer-controller",
                "selinux-warning-controller",
                "token-cleaner-controller",
            ],
        },
    ),
    Fact(
        key="kube_controller_manager.sa_token_needs_key",
        statement="The serviceaccount-token controller is not started without "
        "--service-account-private-key-file",
        source=f"{K8S} cmd/kube-controller-manager/app/service_accounts.go@{TAG}",
        value="--service-account-private-key-file",
    ),
    Fact(
        key="kubeadm.controller_manager_flags",
        statement="kubeadm runs the controller manager with per-controller service account credentials, "
        "the cluster CA as root CA and signer, and the service account private key",
        source=f"{K8S} cmd/kubeadm/app/phases/controlplane/manifests.go@{TAG}",
        value=[
            "use-service-account-credentials",
            "root-ca-file",
            "service-account-private-key-file",
            "cluster-signing-cert-file",
            "cluster-signing-key-file",
        ],
    ),
    Fact(
        key="kube_components.default_secure_ports",
        statement="The controller manager and scheduler serve HTTPS on fixed default ports, which parallel "
        "clusters on one machine would share: the fixture gives each a free port",
        source=f"{K8S} pkg/cluster/ports/ports.go@{TAG}",
        value={"kube-controller-manager": 10257, "kube-scheduler": 10259},
    ),
    # -------------------------------------------------------------------------------------------- etcd
    Fact(
        key="etcd.default_ports",
        statement="etcd listens on localhost:2379 (clients) and localhost:2380 (peers) unless told otherwise",
        source="etcd-io/etcd server/embed/config.go@v3.6.8",
        value={"client": 2379, "peer": 2380},
    ),
    Fact(
        key="etcd.flags",
        statement="etcd has --client-cert-auth and --peer-client-cert-auth (off by default) and "
        "--unsafe-no-fsync, which skips fsync at the cost of durability",
        source="etcd-io/etcd server/embed/config.go@v3.6.8",
        value=["client-cert-auth", "peer-client-cert-auth", "unsafe-no-fsync"],
    ),
    # -------------------------------------------------------------------------------------------- kwok
    Fact(
        key="kwok.default_stages",
        statement="kwokctl loads node-initialize and node-heartbeat-with-lease (with leases) for Nodes and "
        "pod-ready, pod-complete and pod-delete for Pods",
        source=f"{KWOK} pkg/kwokctl/runtime/cluster.go@v0.8.0",
        value={
            "node": [
                "kustomize/stage/node/fast/node-initialize.yaml",
                "kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml",
            ],
            "pod": [
                "kustomize/stage/pod/fast/pod-ready.yaml",
                "kustomize/stage/pod/fast/pod-complete.yaml",
                "kustomize/stage/pod/fast/pod-delete.yaml",
            ],
        },
    ),
    Fact(
        key="kwok.stage.pod_complete_owner",
        statement="The pod-complete stage moves a Running Pod to Succeeded only when an ownerReference's "
        "kind is Job; other Pods stay Running",
        source=f"{KWOK} kustomize/stage/pod/fast/pod-complete.yaml@v0.8.0",
        value="Job",
    ),
    Fact(
        key="kwok.stage.node_initialize_allocatable",
        statement="The node-initialize stage keeps a Node's own status.allocatable and addresses, and marks "
        "its conditions (Ready among them) from kwok's NodeConditions",
        source=f"{KWOK} kustomize/stage/node/fast/node-initialize.yaml@v0.8.0",
        value=True,
    ),
    Fact(
        key="kwok.config_flag",
        statement="kwok reads Stage objects from each --config file, and also ~/.kwok/kwok.yaml first "
        "when it exists; KWOK_WORKDIR moves that folder",
        source=f"{KWOK} pkg/config/flags.go@v0.8.0",
        value={"flag": "--config", "workdir_variable": "KWOK_WORKDIR"},
    ),
    Fact(
        key="kwok.node_lease_default",
        statement="kwok's --node-lease-duration-seconds defaults to 0, which turns node leases off; kwokctl "
        "passes 40",
        source=f"{KWOK} pkg/kwok/controllers/controller.go@v0.8.0",
        value=40,
    ),
    Fact(
        key="kwok.node_annotation",
        statement="kwokctl runs kwok with --manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake, "
        "managing only Nodes annotated so",
        source=f"{KWOK} pkg/kwokctl/runtime/kind/cluster_kwok_controller.go@v0.8.0",
        value="kwok.x-k8s.io/node=fake",
    ),
    Fact(
        key="kwok.pod_ips",
        statement="kwok gives a Pod an IP from its Node's spec.podCIDR (else from --cidr, default "
        "10.0.0.0/24) and its hostIP from the Node's addresses",
        source=f"{KWOK} pkg/kwok/controllers/pod_controller.go@v0.8.0",
        value="10.0.0.0/24",
    ),
]
