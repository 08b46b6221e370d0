package deploy

import (
	"fmt"
	"net"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	k8slabels "k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/nsguard/nsguard/config"
)

const (
	baseDir    = "k8s/base"
	overlayDir = "k8s/overlays/example"
	haDir      = "k8s/overlays/ha"
	configKey  = "nsguard.yaml"
	metricPort = 9153
)

// manifests is a rendered kustomization, every object decoded strictly.
type manifests struct {
	objects []runtime.Object
}

// strictDecoder decodes the kinds nsguard ships into their typed structs;
// an unknown field (a typo, a wrong indentation, a field from another API
// version), a duplicate field or a kind outside this scheme is an error.
// It is what `kubectl apply --validate=strict` asks the API server to do,
// done offline.
var strictDecoder = func() runtime.Decoder {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{corev1.AddToScheme, appsv1.AddToScheme, policyv1.AddToScheme, monitoringv1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return serializer.NewCodecFactory(s, serializer.EnableStrict).UniversalDeserializer()
}()

// render builds a kustomization in-process (the kustomize that kubectl
// embeds) and decodes every object strictly.
func render(dir string) (*manifests, error) {
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	rm, err := k.Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build %s: %w", dir, err)
	}
	m := &manifests{}
	var errs []string
	for _, r := range rm.Resources() {
		id := r.CurId().String()
		data, err := r.MarshalJSON()
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		obj, _, err := strictDecoder.Decode(data, nil, nil)
		if err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", id, err))
			continue
		}
		m.objects = append(m.objects, obj)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("%s: invalid objects:\n%s", dir, strings.Join(errs, "\n"))
	}
	return m, nil
}

func all[T runtime.Object](m *manifests) []T {
	var out []T
	for _, o := range m.objects {
		if t, ok := o.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

func one[T runtime.Object](t *testing.T, m *manifests) T {
	t.Helper()
	objs := all[T](m)
	if len(objs) != 1 {
		var zero T
		t.Fatalf("want exactly one %T, got %d", zero, len(objs))
	}
	return objs[0]
}

func mustRender(t *testing.T, dir string) *manifests {
	t.Helper()
	m, err := render(dir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestRenderKinds(t *testing.T) {
	for _, tt := range []struct {
		dir  string
		want []string
	}{
		{baseDir, []string{"ConfigMap", "PrometheusRule", "Service", "ServiceAccount", "ServiceMonitor", "StatefulSet"}},
		{overlayDir, []string{"ConfigMap", "Namespace", "PrometheusRule", "Secret", "Secret", "Service", "ServiceAccount", "ServiceMonitor", "StatefulSet"}},
		{haDir, []string{"ConfigMap", "Deployment", "Namespace", "PodDisruptionBudget", "PrometheusRule", "Secret", "Secret", "Secret", "Service", "ServiceAccount", "ServiceMonitor"}},
	} {
		t.Run(tt.dir, func(t *testing.T) {
			m := mustRender(t, tt.dir)
			var kinds []string
			for _, o := range m.objects {
				kinds = append(kinds, o.GetObjectKind().GroupVersionKind().Kind)
			}
			slices.Sort(kinds)
			if !slices.Equal(kinds, tt.want) {
				t.Fatalf("kinds = %v, want %v", kinds, tt.want)
			}
		})
	}
}

// TestBrokenManifestsFail proves the validator can fail: each fixture is
// the real base with one mistake.
func TestBrokenManifestsFail(t *testing.T) {
	for _, tt := range []struct {
		dir, want string
	}{
		// livenessprobe for livenessProbe: encoding/json would accept it.
		{"testdata/k8s/unknown-field", `unknown field "spec.template.spec.containers[0].livenessprobe"`},
		{"testdata/k8s/unknown-field-crd", `unknown field "spec.groups[0].rules[0].expression"`},
		{"testdata/k8s/wrong-type", `spec.replicas`},
		{"testdata/k8s/unknown-kind", `no kind "Deploymnet" is registered`},
	} {
		t.Run(filepath.Base(tt.dir), func(t *testing.T) {
			_, err := render(tt.dir)
			if err == nil {
				t.Fatalf("render(%s) = nil error, want one mentioning %s", tt.dir, tt.want)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("render(%s) error:\n%v\nwant it to mention %s", tt.dir, err, tt.want)
			}
		})
	}
}

func TestBaseHasNoSecrets(t *testing.T) {
	m := mustRender(t, baseDir)
	if s := all[*corev1.Secret](m); len(s) != 0 {
		t.Fatalf("the base holds %d Secret(s); secrets belong in an overlay or a secret manager", len(s))
	}
}

// workload is the rendered pod controller: the single node's StatefulSet or
// the HA overlay's Deployment.
type workload struct {
	kind     string
	replicas *int32
	pod      corev1.PodTemplateSpec
	selector *metav1.LabelSelector
	sts      *appsv1.StatefulSet
	dep      *appsv1.Deployment
}

func workloadOf(m *manifests) (workload, error) {
	sts, deps := all[*appsv1.StatefulSet](m), all[*appsv1.Deployment](m)
	switch {
	case len(sts) == 1 && len(deps) == 0:
		s := sts[0]
		return workload{kind: "StatefulSet", replicas: s.Spec.Replicas, pod: s.Spec.Template, selector: s.Spec.Selector, sts: s}, nil
	case len(deps) == 1 && len(sts) == 0:
		d := deps[0]
		return workload{kind: "Deployment", replicas: d.Spec.Replicas, pod: d.Spec.Template, selector: d.Spec.Selector, dep: d}, nil
	}
	return workload{}, fmt.Errorf("want one StatefulSet (one node) or one Deployment (replicas), got %d and %d", len(sts), len(deps))
}

func mustWorkload(t *testing.T, m *manifests) workload {
	t.Helper()
	w, err := workloadOf(m)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// checkWorkload asserts the properties deploy/README.md promises of the pod:
// for one node a single-replica StatefulSet with the store on a claim; for
// replicas a Deployment of at least three, never two on one node, with no
// store volume (the state is in PostgreSQL).
func checkWorkload(m *manifests) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	w, err := workloadOf(m)
	if err != nil {
		return []string{err.Error()}
	}
	replicas := "unset"
	if w.replicas != nil {
		replicas = strconv.Itoa(int(*w.replicas))
	}
	switch w.kind {
	case "StatefulSet":
		if w.replicas == nil || *w.replicas != 1 {
			fail("replicas must be 1 (SQLite has a single writer), got %s", replicas)
		}
		if p := w.sts.Spec.PodManagementPolicy; p != "" && p != appsv1.OrderedReadyPodManagement {
			fail("podManagementPolicy %s: OrderedReady keeps an old and a new pod off the store at once", p)
		}
	case "Deployment":
		if w.replicas == nil || *w.replicas < 3 {
			fail("replicas must be at least 3 (one leads, a PodDisruptionBudget keeps two), got %s", replicas)
		}
		if !antiAffine(w.pod.Spec, w.pod.Labels) {
			fail("pods need a required anti-affinity on kubernetes.io/hostname: two replicas on one node die together")
		}
		if ru := w.dep.Spec.Strategy.RollingUpdate; w.dep.Spec.Strategy.Type != appsv1.RollingUpdateDeploymentStrategyType || ru == nil ||
			ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
			fail("a rollout must keep every replica until its successor is ready (RollingUpdate, maxUnavailable 0)")
		}
	}
	pod := w.pod.Spec
	psc := pod.SecurityContext
	if psc == nil {
		psc = &corev1.PodSecurityContext{}
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		fail("automountServiceAccountToken must be false: nsguard never calls the API")
	}
	if pod.HostNetwork || pod.HostPID || pod.HostIPC {
		fail("no host namespaces")
	}
	if len(pod.Containers) == 0 {
		return append(errs, "no containers")
	}
	for _, c := range append(append([]corev1.Container{}, pod.InitContainers...), pod.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			fail("%s: no securityContext", c.Name)
			continue
		}
		if !isTrue(sc.RunAsNonRoot) && !isTrue(psc.RunAsNonRoot) {
			fail("%s: runAsNonRoot must be true", c.Name)
		}
		if u := firstNonNil(sc.RunAsUser, psc.RunAsUser); u != nil && *u == 0 {
			fail("%s: runAsUser 0", c.Name)
		}
		if !isTrue(sc.ReadOnlyRootFilesystem) {
			fail("%s: readOnlyRootFilesystem must be true", c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			fail("%s: allowPrivilegeEscalation must be false", c.Name)
		}
		if isTrue(sc.Privileged) {
			fail("%s: privileged", c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			fail("%s: capabilities must drop ALL", c.Name)
		} else if len(sc.Capabilities.Add) > 0 {
			fail("%s: adds capabilities %v", c.Name, sc.Capabilities.Add)
		}
		seccomp := sc.SeccompProfile
		if seccomp == nil {
			seccomp = psc.SeccompProfile
		}
		if seccomp == nil || seccomp.Type != corev1.SeccompProfileTypeRuntimeDefault {
			fail("%s: seccompProfile must be RuntimeDefault", c.Name)
		}
		if c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() || c.Resources.Requests.Cpu().IsZero() {
			fail("%s: set cpu and memory requests and a memory limit", c.Name)
		}
	}
	c := pod.Containers[0]
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		switch {
		case p.probe == nil || p.probe.HTTPGet == nil:
			fail("%s probe must be an httpGet on %s", p.name, p.path)
		case p.probe.HTTPGet.Path != p.path:
			fail("%s probe path = %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		case containerPort(c, p.probe.HTTPGet.Port) != metricPort:
			fail("%s probe port %s is not container port %d", p.name, p.probe.HTTPGet.Port.String(), metricPort)
		}
	}
	if gml := envValue(c, "GOMEMLIMIT"); gml != "" {
		if !strings.HasSuffix(gml, "MiB") {
			fail("GOMEMLIMIT %q: write it in MiB", gml)
		} else if n, err := strconv.Atoi(strings.TrimSuffix(gml, "MiB")); err != nil || int64(n)<<20 >= c.Resources.Limits.Memory().Value() {
			fail("GOMEMLIMIT %s must be below the memory limit %s", gml, c.Resources.Limits.Memory())
		}
	}
	if w.kind == "StatefulSet" {
		// The store lives on the claim, not in the container.
		var claim bool
		for _, vct := range w.sts.Spec.VolumeClaimTemplates {
			if mountPath(c, vct.Name) == "/var/lib/nsguard" {
				claim = true
				if !slices.Contains(vct.Spec.AccessModes, corev1.ReadWriteOnce) {
					fail("the data claim must be ReadWriteOnce")
				}
			}
		}
		if !claim {
			fail("no volumeClaimTemplate mounted at /var/lib/nsguard")
		}
	}
	return errs
}

// antiAffine reports whether the pod refuses to share a node with another
// pod carrying its labels.
func antiAffine(pod corev1.PodSpec, labels map[string]string) bool {
	if pod.Affinity == nil || pod.Affinity.PodAntiAffinity == nil {
		return false
	}
	for _, term := range pod.Affinity.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution {
		if term.TopologyKey != "kubernetes.io/hostname" || term.LabelSelector == nil {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(term.LabelSelector)
		if err == nil && !sel.Empty() && sel.Matches(k8slabels.Set(labels)) {
			return true
		}
	}
	return false
}

func TestWorkloadSecurity(t *testing.T) {
	for _, dir := range []string{baseDir, overlayDir, haDir} {
		t.Run(dir, func(t *testing.T) {
			if errs := checkWorkload(mustRender(t, dir)); len(errs) > 0 {
				t.Fatalf("%s:\n%s", dir, strings.Join(errs, "\n"))
			}
		})
	}
}

// TestInsecureWorkloadFails proves checkWorkload catches a weakened pod:
// the fixture patches the real base.
func TestInsecureWorkloadFails(t *testing.T) {
	errs := checkWorkload(mustRender(t, "testdata/k8s/insecure"))
	want := []string{
		"replicas must be 1",
		"nsguard: readOnlyRootFilesystem must be true",
		"nsguard: allowPrivilegeEscalation must be false",
		"nsguard: capabilities must drop ALL",
		"nsguard: seccompProfile must be RuntimeDefault",
		"readiness probe path = /healthz, want /readyz",
		"podManagementPolicy Parallel",
	}
	got := strings.Join(errs, "\n")
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("checkWorkload missed %q; it reported:\n%s", w, got)
		}
	}
}

// TestConfigMatchesPod parses each overlay's config with nsguard's own
// loader and checks that its paths and port are the pod's mounts and port:
// the single node's store on its claim, the replicas' database URL in a
// Secret.
func TestConfigMatchesPod(t *testing.T) {
	for _, dir := range []string{overlayDir, haDir} {
		t.Run(dir, func(t *testing.T) { checkConfigMatchesPod(t, dir) })
	}
}

func checkConfigMatchesPod(t *testing.T, dir string) {
	m := mustRender(t, dir)
	w := mustWorkload(t, m)
	c := w.pod.Spec.Containers[0]
	vols := map[string]corev1.Volume{}
	for _, v := range w.pod.Spec.Volumes {
		vols[v.Name] = v
	}

	// The config file the args name comes from the ConfigMap volume.
	argConfig := ""
	for i, a := range c.Args {
		if a == "--config" && i+1 < len(c.Args) {
			argConfig = c.Args[i+1]
		}
	}
	if argConfig == "" {
		t.Fatalf("container args %v do not name --config", c.Args)
	}
	cmVol, key := volumeFor(c, vols, argConfig)
	if cmVol.ConfigMap == nil {
		t.Fatalf("%s is not on a ConfigMap volume", argConfig)
	}
	var data string
	for _, cm := range all[*corev1.ConfigMap](m) {
		if cm.Name == cmVol.ConfigMap.Name {
			data = cm.Data[key]
		}
	}
	if data == "" {
		t.Fatalf("ConfigMap %s has no key %s", cmVol.ConfigMap.Name, key)
	}
	cfg, err := config.Parse(argConfig, []byte(data))
	if err != nil {
		t.Fatalf("the ConfigMap's config does not load:\n%v", err)
	}

	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		t.Fatal(err)
	}
	if ip := net.ParseIP(host); host != "" && (ip == nil || !ip.IsUnspecified()) {
		t.Errorf("listen = %s: probes and Prometheus cannot reach %s from outside the pod; use 0.0.0.0", cfg.Listen, host)
	}
	if port != strconv.Itoa(metricPort) || containerPort(c, intstr.FromString("metrics")) != metricPort {
		t.Errorf("listen port %s, container port metrics %d: want both %d", port, containerPort(c, intstr.FromString("metrics")), metricPort)
	}
	files := map[string]string{"alerts.slack.token_file": cfg.Alerts.Slack.TokenFile}
	switch w.kind {
	case "StatefulSet":
		onClaim := false
		if name, _ := mountFor(c, cfg.Store.Path); name != "" {
			for _, vct := range w.sts.Spec.VolumeClaimTemplates {
				onClaim = onClaim || vct.Name == name
			}
		}
		if !onClaim {
			t.Errorf("store.path %s is not on a volumeClaimTemplate: the store would die with the pod", cfg.Store.Path)
		}
	case "Deployment":
		// Replicas share one database: its URL (with the password) comes
		// from a Secret file, and each pod names itself (the host name).
		if !cfg.Store.Postgres() || cfg.Store.URLFile == "" {
			t.Errorf("the replicas' store is %s: want store.url_file naming the database URL in a Secret", cfg.Store)
		}
		files["store.url_file"] = cfg.Store.URLFile
		if cfg.Cluster.Vantage != "" {
			t.Errorf("cluster.vantage %q: every pod would claim one name; leave it to the pod's name", cfg.Cluster.Vantage)
		}
		if grace := w.pod.Spec.TerminationGracePeriodSeconds; grace == nil || *grace < 35 {
			t.Errorf("terminationGracePeriodSeconds must leave the 30 s drain and the last deliveries before the leader resigns")
		}
		if cfg.Registry.CacheDir == "" || mountPath(c, "tmp") == "" || !strings.HasPrefix(cfg.Registry.CacheDir+"/", mountPath(c, "tmp")+"/") {
			t.Errorf("registry.cache_dir %q must be on a writable volume (the root filesystem is read-only, there is no store file to sit beside)", cfg.Registry.CacheDir)
		}
	}

	// Each secret file the config names is a key of a Secret the overlay
	// generates (kustomize rewrote the name to the hashed one).
	secrets := map[string]*corev1.Secret{}
	for _, sec := range all[*corev1.Secret](m) {
		secrets[sec.Name] = sec
	}
	for _, pb := range cfg.Playbooks {
		for i, st := range append(append([]config.Step{}, pb.Steps...), pb.Rollback...) {
			if st.DNSUpdate != nil {
				files[fmt.Sprintf("playbook %s step %d tsig_file", pb.Name, i)] = st.DNSUpdate.TSIGFile
			}
		}
	}
	for what, file := range files {
		v, item := volumeFor(c, vols, file)
		if v.Secret == nil {
			t.Errorf("%s %s is not on a Secret volume", what, file)
			continue
		}
		key := item
		for _, it := range v.Secret.Items {
			if it.Path == item {
				key = it.Key
			}
		}
		sec, ok := secrets[v.Secret.SecretName]
		if !ok {
			t.Errorf("%s: Secret %s is not in the overlay", what, v.Secret.SecretName)
			continue
		}
		if _, ok := sec.Data[key]; !ok {
			t.Errorf("%s: Secret %s has no key %s", what, sec.Name, key)
		}
	}
}

// TestOverlayImagePinned: each overlay names a real image and a fixed tag
// (the base's placeholder "nsguard" is replaced by kustomize's images:).
func TestOverlayImagePinned(t *testing.T) {
	for _, dir := range []string{overlayDir, haDir} {
		w := mustWorkload(t, mustRender(t, dir))
		img := w.pod.Spec.Containers[0].Image
		name, tag, ok := strings.Cut(img[strings.LastIndex(img, "/")+1:], ":")
		if !strings.Contains(img, "/") || !ok || tag == "" || tag == "latest" || name != "nsguard" {
			t.Fatalf("%s: image %q: want REGISTRY/…/nsguard:TAG with a fixed tag", dir, img)
		}
	}
}

func TestMonitoringWiring(t *testing.T) {
	for _, dir := range []string{overlayDir, haDir} {
		t.Run(dir, func(t *testing.T) { checkMonitoringWiring(t, dir) })
	}
}

func checkMonitoringWiring(t *testing.T, dir string) {
	m := mustRender(t, dir)
	w := mustWorkload(t, m)
	svc := one[*corev1.Service](t, m)
	sm := one[*monitoringv1.ServiceMonitor](t, m)
	podLabels := w.pod.Labels

	for k, v := range svc.Spec.Selector {
		if podLabels[k] != v {
			t.Errorf("Service selector %s=%s does not match the pod labels %v", k, v, podLabels)
		}
	}
	for k, v := range w.selector.MatchLabels {
		if podLabels[k] != v {
			t.Errorf("%s selector %s=%s does not match its template", w.kind, k, v)
		}
	}
	if w.sts != nil && w.sts.Spec.ServiceName != svc.Name {
		t.Errorf("serviceName %s, service %s", w.sts.Spec.ServiceName, svc.Name)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("the Service must be headless: Prometheus scrapes every pod (each replica's nsguard_leader)")
	}
	for k, v := range sm.Spec.Selector.MatchLabels {
		if svc.Labels[k] != v {
			t.Errorf("ServiceMonitor selector %s=%s does not match the Service labels %v", k, v, svc.Labels)
		}
	}
	ports := map[string]corev1.ServicePort{}
	for _, p := range svc.Spec.Ports {
		ports[p.Name] = p
	}
	for _, ep := range sm.Spec.Endpoints {
		p, ok := ports[ep.Port]
		if !ok {
			t.Errorf("ServiceMonitor scrapes port %q, the Service has %v", ep.Port, svc.Spec.Ports)
			continue
		}
		if containerPort(w.pod.Spec.Containers[0], p.TargetPort) != metricPort {
			t.Errorf("Service port %s targets %s, not the metrics container port", p.Name, p.TargetPort.String())
		}
		if ep.Path != "/metrics" {
			t.Errorf("ServiceMonitor path %q, want /metrics", ep.Path)
		}
	}
}

// checkHA asserts what deploy/README.md promises of the HA overlay beyond
// the pod: a PodDisruptionBudget that keeps two replicas through drains,
// selects exactly the replicas' pods and still lets a drain evict one, and
// no single node's StatefulSet beside the Deployment.
func checkHA(m *manifests) []string {
	var errs []string
	fail := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	w, err := workloadOf(m)
	if err != nil {
		return []string{err.Error()}
	}
	pdbs := all[*policyv1.PodDisruptionBudget](m)
	if len(pdbs) != 1 {
		return append(errs, fmt.Sprintf("want one PodDisruptionBudget, got %d", len(pdbs)))
	}
	pdb := pdbs[0]
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 2 || pdb.Spec.MaxUnavailable != nil {
		fail("PodDisruptionBudget minAvailable = %v, want 2", pdb.Spec.MinAvailable)
	}
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(k8slabels.Set(w.pod.Labels)) {
		fail("the PodDisruptionBudget's selector %v does not select the replicas' pods %v", pdb.Spec.Selector, w.pod.Labels)
	}
	if pdb.Spec.MinAvailable != nil && (w.replicas == nil || int(*w.replicas) <= pdb.Spec.MinAvailable.IntValue()) {
		fail("%d replicas with minAvailable %d: a drain could never evict one", ptrOr(w.replicas), pdb.Spec.MinAvailable.IntValue())
	}
	if w.kind != "Deployment" {
		fail("the replicas are a %s, want a Deployment", w.kind)
	}
	return errs
}

func ptrOr(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func TestHAOverlay(t *testing.T) {
	m := mustRender(t, haDir)
	if errs := checkHA(m); len(errs) > 0 {
		t.Fatalf("%s:\n%s", haDir, strings.Join(errs, "\n"))
	}
	if len(all[*appsv1.StatefulSet](m)) != 0 {
		t.Error("the HA overlay still holds the single node's StatefulSet")
	}
}

// TestWeakHAFails: the HA overlay with two replicas, no anti-affinity, a
// rollout that may take one down first and a budget selecting nothing is
// refused, each change named.
func TestWeakHAFails(t *testing.T) {
	m := mustRender(t, "testdata/k8s/weak-ha")
	got := strings.Join(append(checkWorkload(m), checkHA(m)...), "\n")
	for _, w := range []string{
		"replicas must be at least 3",
		"pods need a required anti-affinity on kubernetes.io/hostname",
		"a rollout must keep every replica until its successor is ready",
		"does not select the replicas' pods",
		"2 replicas with minAvailable 2: a drain could never evict one",
	} {
		if !strings.Contains(got, w) {
			t.Errorf("missed %q; reported:\n%s", w, got)
		}
	}
}

func TestPrometheusRules(t *testing.T) {
	m := mustRender(t, overlayDir)
	pr := one[*monitoringv1.PrometheusRule](t, m)
	want := []string{"NsguardDown", "NsguardCyclesFailing", "NsguardOutboxNotDraining", "NsguardCriticalFindings"}
	var alerts []string
	for _, g := range pr.Spec.Groups {
		for _, r := range g.Rules {
			name := r.Alert + r.Record
			alerts = append(alerts, name)
			bad, err := unknownMetrics(r.Expr.String())
			if err != nil {
				t.Errorf("%s: %v", name, err)
			} else if len(bad) > 0 {
				t.Errorf("%s queries %v, which nsguard does not export", name, bad)
			}
			if r.For != nil && !durationRe.MatchString(string(*r.For)) {
				t.Errorf("%s: for %q is not a Prometheus duration", name, *r.For)
			}
			sev := r.Labels["severity"]
			if r.Alert != "" && sev != "critical" && sev != "warning" && sev != "info" {
				t.Errorf("%s: severity label %q", name, sev)
			}
			for k, a := range r.Annotations {
				if err := checkAlertTemplate(a); err != nil {
					t.Errorf("%s annotation %s: %v", name, k, err)
				}
			}
			if r.Alert != "" && (r.Annotations["summary"] == "" || r.Annotations["description"] == "") {
				t.Errorf("%s needs a summary and a description", name)
			}
		}
	}
	for _, w := range want {
		if !slices.Contains(alerts, w) {
			t.Errorf("no alert %s (have %v)", w, alerts)
		}
	}
}

// TestMetricCheckCatchesTypos guards the metric check itself.
func TestMetricCheckCatchesTypos(t *testing.T) {
	for _, tt := range []struct {
		expr string
		bad  []string
		err  bool
	}{
		{expr: `sum by (class) (rate(nsguard_cycles_total{result="error"}[5m]))`},
		{expr: `histogram_quantile(0.95, sum by (le) (rate(nsguard_cycle_duration_seconds_bucket[$__rate_interval])))`},
		{expr: `nsguard_outbox_depht > 0`, bad: []string{"nsguard_outbox_depht"}},
		{expr: `rate(nsguard_cycle_total[5m])`, bad: []string{"nsguard_cycle_total"}},
		{expr: `absent(up{job="nsguard_cycles"} == 1)`},
		{expr: `sum(rate(nsguard_cycles_total[5m])`, err: true},
		{expr: `vector(1)`, err: true},
	} {
		bad, err := unknownMetrics(tt.expr)
		if (err != nil) != tt.err {
			t.Errorf("%s: err = %v, want error %v", tt.expr, err, tt.err)
		}
		if !slices.Equal(bad, tt.bad) {
			t.Errorf("%s: unknown = %v, want %v", tt.expr, bad, tt.bad)
		}
	}
}

var durationRe = regexp.MustCompile(`^(0|([0-9]+(ms|s|m|h|d|w|y))+)$`)

func isTrue(b *bool) bool { return b != nil && *b }

func firstNonNil[T any](ps ...*T) *T {
	for _, p := range ps {
		if p != nil {
			return p
		}
	}
	return nil
}

func envValue(c corev1.Container, name string) string {
	for _, e := range c.Env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// containerPort resolves a probe's or service's port (number or name).
func containerPort(c corev1.Container, p intstr.IntOrString) int32 {
	if p.Type == intstr.Int {
		return p.IntVal
	}
	for _, cp := range c.Ports {
		if cp.Name == p.StrVal {
			return cp.ContainerPort
		}
	}
	return 0
}

func mountPath(c corev1.Container, volume string) string {
	for _, vm := range c.VolumeMounts {
		if vm.Name == volume {
			return vm.MountPath
		}
	}
	return ""
}

// mountFor finds the volume mount a file path lives on (the deepest one)
// and the path inside that volume.
func mountFor(c corev1.Container, file string) (volume, rel string) {
	best := ""
	for _, vm := range c.VolumeMounts {
		if strings.HasPrefix(file, vm.MountPath+"/") && len(vm.MountPath) > len(best) {
			best, volume = vm.MountPath, vm.Name
		}
	}
	if best == "" {
		return "", ""
	}
	return volume, path.Clean(strings.TrimPrefix(file, best+"/"))
}

// volumeFor is mountFor resolved to the pod volume.
func volumeFor(c corev1.Container, vols map[string]corev1.Volume, file string) (corev1.Volume, string) {
	name, rel := mountFor(c, file)
	return vols[name], rel
}
