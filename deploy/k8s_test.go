package deploy_test

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/voltageems/voltage/cloud/hub"
	"github.com/voltageems/voltage/shared/service"
)

// kustomization is the part of kustomize's Kustomization these manifests use;
// decoding it strictly refuses any other key.
type kustomization struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Namespace  string `json:"namespace"`
	Labels     []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources          []string `json:"resources"`
	ConfigMapGenerator []struct {
		Name  string   `json:"name"`
		Files []string `json:"files"`
	} `json:"configMapGenerator"`
	SecretGenerator []struct {
		Name string   `json:"name"`
		Envs []string `json:"envs"`
	} `json:"secretGenerator"`
}

// bundle is every object of one kustomization, decoded into the official API types.
type bundle struct {
	dir          string
	namespace    string
	namespaceSet string // the metadata.namespace objects carry: "" in the sources, set after kustomize build
	deployments  []*appsv1.Deployment
	statefulSets []*appsv1.StatefulSet
	services     []*corev1.Service
	pdbs         []*policyv1.PodDisruptionBudget
	hpas         []*autoscalingv2.HorizontalPodAutoscaler
	policies     []*networkingv1.NetworkPolicy
	configMaps   map[string]map[string]string // name → key → file path
	secrets      map[string]map[string]bool   // name → keys
	pvcs         map[string]bool
	accounts     map[string]bool
	namespaces   map[string]bool
}

// workload is a Deployment or StatefulSet.
type workload struct {
	kind, name string
	replicas   int32
	selector   *metav1.LabelSelector
	template   corev1.PodTemplateSpec
	claims     []corev1.PersistentVolumeClaim
}

func (b *bundle) workloads() []workload {
	var out []workload
	for _, d := range b.deployments {
		out = append(out, workload{"Deployment", d.Name, ptrOr(d.Spec.Replicas, 1), d.Spec.Selector, d.Spec.Template, nil})
	}
	for _, s := range b.statefulSets {
		out = append(out, workload{"StatefulSet", s.Name, ptrOr(s.Spec.Replicas, 1), s.Spec.Selector, s.Spec.Template, s.Spec.VolumeClaimTemplates})
	}
	return out
}

func ptrOr(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// splitYAML splits a multi-document YAML file at its "---" lines.
func splitYAML(src []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(src))
	for sc.Scan() {
		if strings.TrimRight(sc.Text(), " ") == "---" {
			docs = append(docs, bytes.Clone(cur.Bytes()))
			cur.Reset()
			continue
		}
		cur.WriteString(sc.Text() + "\n")
	}
	docs = append(docs, cur.Bytes())
	var out [][]byte
	for _, d := range docs {
		if len(bytes.TrimSpace(stripComments(d))) > 0 {
			out = append(out, d)
		}
	}
	return out
}

func stripComments(d []byte) []byte {
	var out bytes.Buffer
	for _, l := range strings.Split(string(d), "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			out.WriteString(l + "\n")
		}
	}
	return out.Bytes()
}

// loadBundle reads a kustomization folder: every resource strictly decoded into
// its API type, and the generated ConfigMaps and Secrets.
func loadBundle(t testing.TB, dir string) *bundle {
	t.Helper()
	var k kustomization
	if err := yaml.UnmarshalStrict(readFile(t, filepath.Join(dir, "kustomization.yaml")), &k); err != nil {
		t.Fatalf("%s/kustomization.yaml: %v", dir, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" || k.Namespace == "" {
		t.Fatalf("%s/kustomization.yaml: apiVersion %q kind %q namespace %q", dir, k.APIVersion, k.Kind, k.Namespace)
	}
	b := &bundle{dir: dir, namespace: k.Namespace, configMaps: map[string]map[string]string{}, secrets: map[string]map[string]bool{},
		pvcs: map[string]bool{}, accounts: map[string]bool{"default": true}, namespaces: map[string]bool{}}

	// Every manifest of the folder is a resource, and every resource exists.
	yamls, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
	for _, f := range yamls {
		if base := filepath.Base(f); base != "kustomization.yaml" && !slices.Contains(k.Resources, base) && !generatorFile(k, base) {
			t.Errorf("%s is not listed in %s/kustomization.yaml", f, dir)
		}
	}
	for _, r := range k.Resources {
		for i, doc := range splitYAML(readFile(t, filepath.Join(dir, r))) {
			if err := b.decode(doc); err != nil {
				t.Errorf("%s/%s document %d: %v", dir, r, i+1, err)
			}
		}
	}
	for _, g := range k.ConfigMapGenerator {
		keys := map[string]string{}
		for _, f := range g.Files {
			p := filepath.Join(dir, f)
			if _, err := os.Stat(p); err != nil {
				t.Errorf("configMapGenerator %s: %v", g.Name, err)
			}
			keys[filepath.Base(f)] = p
		}
		b.configMaps[g.Name] = keys
	}
	for _, g := range k.SecretGenerator {
		keys := map[string]bool{}
		for _, f := range g.Envs {
			// The env file holds credentials and is not checked in: its
			// example is, with every key, and .gitignore keeps the real one out.
			if !strings.Contains(string(readFile(t, filepath.Join(dir, ".gitignore"))), f+"\n") {
				t.Errorf("%s/.gitignore does not keep %s out of the repository", dir, f)
			}
			for _, l := range strings.Split(string(readFile(t, filepath.Join(dir, f+".example"))), "\n") {
				if l = strings.TrimSpace(l); l == "" || strings.HasPrefix(l, "#") {
					continue
				}
				key, val, ok := strings.Cut(l, "=")
				if !ok || val != "" {
					t.Errorf("%s/%s.example: %q: want KEY= with no value (no default secrets)", dir, f, l)
				}
				keys[key] = true
			}
		}
		b.secrets[g.Name] = keys
	}
	return b
}

func generatorFile(k kustomization, base string) bool {
	for _, g := range k.ConfigMapGenerator {
		if slices.Contains(g.Files, base) {
			return true
		}
	}
	return false
}

// decode decodes one manifest strictly into its official API type.
func (b *bundle) decode(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	strict := func(obj any) error { return yaml.UnmarshalStrict(doc, obj) }
	var meta *metav1.ObjectMeta
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 Namespace":
		var o corev1.Namespace
		if err := strict(&o); err != nil {
			return err
		}
		b.namespaces[o.Name] = true
		return nil // cluster-scoped
	case "v1 ConfigMap":
		var o corev1.ConfigMap
		if err := strict(&o); err != nil {
			return err
		}
		meta = &o.ObjectMeta
	case "v1 Secret":
		var o corev1.Secret
		if err := strict(&o); err != nil {
			return err
		}
		meta = &o.ObjectMeta
	case "v1 ServiceAccount":
		var o corev1.ServiceAccount
		if err := strict(&o); err != nil {
			return err
		}
		b.accounts[o.Name], meta = true, &o.ObjectMeta
	case "v1 PersistentVolumeClaim":
		var o corev1.PersistentVolumeClaim
		if err := strict(&o); err != nil {
			return err
		}
		b.pvcs[o.Name], meta = true, &o.ObjectMeta
	case "v1 Service":
		var o corev1.Service
		if err := strict(&o); err != nil {
			return err
		}
		b.services, meta = append(b.services, &o), &o.ObjectMeta
	case "apps/v1 Deployment":
		var o appsv1.Deployment
		if err := strict(&o); err != nil {
			return err
		}
		b.deployments, meta = append(b.deployments, &o), &o.ObjectMeta
	case "apps/v1 StatefulSet":
		var o appsv1.StatefulSet
		if err := strict(&o); err != nil {
			return err
		}
		b.statefulSets, meta = append(b.statefulSets, &o), &o.ObjectMeta
	case "policy/v1 PodDisruptionBudget":
		var o policyv1.PodDisruptionBudget
		if err := strict(&o); err != nil {
			return err
		}
		b.pdbs, meta = append(b.pdbs, &o), &o.ObjectMeta
	case "autoscaling/v2 HorizontalPodAutoscaler":
		var o autoscalingv2.HorizontalPodAutoscaler
		if err := strict(&o); err != nil {
			return err
		}
		b.hpas, meta = append(b.hpas, &o), &o.ObjectMeta
	case "networking.k8s.io/v1 NetworkPolicy":
		var o networkingv1.NetworkPolicy
		if err := strict(&o); err != nil {
			return err
		}
		b.policies, meta = append(b.policies, &o), &o.ObjectMeta
	default:
		return fmt.Errorf("apiVersion %q kind %q: not a type these tests know", tm.APIVersion, tm.Kind)
	}
	if meta.Name == "" {
		return fmt.Errorf("%s without metadata.name", tm.Kind)
	}
	if meta.Namespace != b.namespaceSet {
		return fmt.Errorf("%s %s sets metadata.namespace; the kustomization sets it", tm.Kind, meta.Name)
	}
	return nil
}

func selects(t testing.TB, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Errorf("selector %v: %v", sel, err)
		return false
	}
	return !s.Empty() && s.Matches(labels.Set(l))
}

// portOf finds a container port by name or number.
func portOf(c corev1.Container, p intstr.IntOrString) (corev1.ContainerPort, bool) {
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp, true
		}
	}
	return corev1.ContainerPort{}, false
}

func podHasPort(tpl corev1.PodTemplateSpec, p intstr.IntOrString) bool {
	for _, c := range tpl.Spec.Containers {
		if _, ok := portOf(c, p); ok {
			return true
		}
	}
	return false
}

// check runs the cross-object checks shared by the cloud and edge bundles.
func (b *bundle) check(t testing.TB) {
	t.Helper()
	bins := binaryByName(t)
	if !b.namespaces[b.namespace] {
		t.Errorf("%s: namespace %s is not created", b.dir, b.namespace)
	}
	ws := b.workloads()
	byKind := map[string]workload{}
	for _, w := range ws {
		byKind[w.kind+"/"+w.name] = w
		where := b.dir + " " + w.kind + " " + w.name
		if !selects(t, w.selector, w.template.Labels) {
			t.Errorf("%s: selector %v does not match its pod labels %v", where, w.selector, w.template.Labels)
		}
		spec := w.template.Spec
		if sa := spec.ServiceAccountName; sa != "" && !b.accounts[sa] {
			t.Errorf("%s: service account %s does not exist", where, sa)
		}
		if sc := spec.SecurityContext; sc == nil || sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot {
			t.Errorf("%s: pod securityContext.runAsNonRoot is not true", where)
		}
		volumes := map[string]bool{}
		for _, v := range spec.Volumes {
			volumes[v.Name] = true
			switch {
			case v.ConfigMap != nil:
				if _, ok := b.configMaps[v.ConfigMap.Name]; !ok {
					t.Errorf("%s: volume %s: ConfigMap %s is neither generated nor defined", where, v.Name, v.ConfigMap.Name)
				}
			case v.Secret != nil:
				if _, ok := b.secrets[v.Secret.SecretName]; !ok {
					t.Errorf("%s: volume %s: Secret %s is not generated", where, v.Name, v.Secret.SecretName)
				}
			case v.PersistentVolumeClaim != nil:
				if !b.pvcs[v.PersistentVolumeClaim.ClaimName] {
					t.Errorf("%s: volume %s: PVC %s does not exist", where, v.Name, v.PersistentVolumeClaim.ClaimName)
				}
			}
		}
		for _, c := range w.claims {
			volumes[c.Name] = true
		}
		for _, c := range spec.Containers {
			where := where + " container " + c.Name
			req, lim := c.Resources.Requests, c.Resources.Limits
			for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				if _, ok := req[r]; !ok {
					t.Errorf("%s: no %s request", where, r)
				}
				if _, ok := lim[r]; !ok {
					t.Errorf("%s: no %s limit", where, r)
				}
			}
			if c.LivenessProbe == nil || c.ReadinessProbe == nil {
				t.Errorf("%s: liveness and readiness probes are required", where)
			}
			for name, p := range map[string]*corev1.Probe{"startup": c.StartupProbe, "liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if p == nil {
					continue
				}
				var port *intstr.IntOrString
				switch {
				case p.HTTPGet != nil:
					port = &p.HTTPGet.Port
				case p.TCPSocket != nil:
					port = &p.TCPSocket.Port
				case p.Exec != nil:
					continue
				default:
					t.Errorf("%s: %s probe has no handler", where, name)
					continue
				}
				if _, ok := portOf(c, *port); !ok {
					t.Errorf("%s: %s probe port %s is not a container port", where, name, port.String())
				}
			}
			if sc := c.SecurityContext; sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Errorf("%s: allowPrivilegeEscalation is not false", where)
			}
			for _, m := range c.VolumeMounts {
				if !volumes[m.Name] {
					t.Errorf("%s: mount of unknown volume %s", where, m.Name)
				}
			}
			for _, e := range c.Env {
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					if !b.secrets[ref.Name][ref.Key] {
						t.Errorf("%s: env %s: Secret %s has no key %s", where, e.Name, ref.Name, ref.Key)
					}
				}
			}
			for _, e := range c.EnvFrom {
				if e.SecretRef != nil {
					if _, ok := b.secrets[e.SecretRef.Name]; !ok {
						t.Errorf("%s: envFrom Secret %s is not generated", where, e.SecretRef.Name)
					}
				}
			}
			if image, tag, _ := strings.Cut(c.Image, ":"); strings.HasPrefix(image, "voltageems/") {
				if bin, ok := bins[strings.TrimPrefix(image, "voltageems/")]; !ok || bin.Probe == "" {
					t.Errorf("%s: image %s is not built by deploy/docker/Dockerfile", where, c.Image)
				}
			} else if tag == "" || tag == "latest" {
				t.Errorf("%s: third-party image %s is not pinned", where, c.Image)
			}
		}
		if w.kind == "StatefulSet" {
			ss := b.statefulSet(w.name)
			svc := b.service(ss.Spec.ServiceName)
			if svc == nil || svc.Spec.ClusterIP != corev1.ClusterIPNone {
				t.Errorf("%s: serviceName %s is not a headless Service of the bundle", where, ss.Spec.ServiceName)
			}
		}
	}

	for _, s := range b.services {
		var matched []workload
		for _, w := range ws {
			if len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.template.Labels)) {
				matched = append(matched, w)
			}
		}
		if len(matched) == 0 {
			t.Errorf("%s Service %s: selector %v matches no workload", b.dir, s.Name, s.Spec.Selector)
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.Type == intstr.Int && target.IntVal == 0 {
				target = intstr.FromInt32(p.Port)
			}
			for _, w := range matched {
				if !podHasPort(w.template, target) {
					t.Errorf("%s Service %s port %d: target %s is not a port of %s", b.dir, s.Name, p.Port, target.String(), w.name)
				}
			}
		}
	}

	for _, p := range b.pdbs {
		n := 0
		for _, w := range ws {
			if selects(t, p.Spec.Selector, w.template.Labels) {
				n++
				if p.Spec.MinAvailable != nil && p.Spec.MinAvailable.Type == intstr.Int && p.Spec.MinAvailable.IntVal >= w.replicas {
					t.Errorf("%s PDB %s: minAvailable %d with %d replicas blocks every drain", b.dir, p.Name, p.Spec.MinAvailable.IntVal, w.replicas)
				}
			}
		}
		if n != 1 {
			t.Errorf("%s PDB %s selects %d workloads, want 1", b.dir, p.Name, n)
		}
	}

	for _, h := range b.hpas {
		ref := h.Spec.ScaleTargetRef
		w, ok := byKind[ref.Kind+"/"+ref.Name]
		if !ok || ref.APIVersion != "apps/v1" {
			t.Errorf("%s HPA %s: target %s %s/%s does not exist", b.dir, h.Name, ref.APIVersion, ref.Kind, ref.Name)
			continue
		}
		if h.Spec.MinReplicas == nil || *h.Spec.MinReplicas < 2 || h.Spec.MaxReplicas <= *h.Spec.MinReplicas {
			t.Errorf("%s HPA %s: min %v max %d", b.dir, h.Name, h.Spec.MinReplicas, h.Spec.MaxReplicas)
		}
		for _, m := range h.Spec.Metrics {
			if m.Resource == nil {
				continue
			}
			for _, c := range w.template.Spec.Containers {
				if _, ok := c.Resources.Requests[m.Resource.Name]; !ok {
					t.Errorf("%s HPA %s scales on %s, which container %s does not request", b.dir, h.Name, m.Resource.Name, c.Name)
				}
			}
		}
	}

	for _, np := range b.policies {
		var selected []workload
		for _, w := range ws {
			if len(np.Spec.PodSelector.MatchLabels)+len(np.Spec.PodSelector.MatchExpressions) == 0 || selects(t, &np.Spec.PodSelector, w.template.Labels) {
				selected = append(selected, w)
			}
		}
		if len(selected) == 0 {
			t.Errorf("%s NetworkPolicy %s selects no pod", b.dir, np.Name)
		}
		for _, rule := range np.Spec.Ingress {
			for _, p := range rule.Ports {
				if p.Port == nil {
					continue
				}
				found := false
				for _, w := range selected {
					found = found || podHasPort(w.template, *p.Port)
				}
				if !found {
					t.Errorf("%s NetworkPolicy %s allows port %s, which no selected pod has", b.dir, np.Name, p.Port.String())
				}
			}
			for _, peer := range rule.From {
				if peer.PodSelector != nil && peer.NamespaceSelector == nil {
					from := false
					for _, w := range ws {
						from = from || selects(t, peer.PodSelector, w.template.Labels)
					}
					if !from {
						t.Errorf("%s NetworkPolicy %s admits pods %v, which do not exist", b.dir, np.Name, peer.PodSelector.MatchLabels)
					}
				}
			}
		}
	}
}

func (b *bundle) statefulSet(name string) *appsv1.StatefulSet {
	for _, s := range b.statefulSets {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (b *bundle) service(name string) *corev1.Service {
	for _, s := range b.services {
		if s.Name == name {
			return s
		}
	}
	return nil
}

func (b *bundle) deployment(t testing.TB, name string) *appsv1.Deployment {
	t.Helper()
	for _, d := range b.deployments {
		if d.Name == name {
			return d
		}
	}
	t.Fatalf("%s: no Deployment %s", b.dir, name)
	return nil
}

func TestKubernetesCloud(t *testing.T) {
	b := loadBundle(t, "k8s/cloud")
	b.check(t)

	// NATS: 3 nodes with JetStream, one route per node, listeners on the ports the
	// pods declare.
	nats := b.statefulSet("nats")
	if nats == nil || ptrOr(nats.Spec.Replicas, 1) != 3 {
		t.Fatalf("k8s/cloud: want a StatefulSet nats with 3 replicas")
	}
	for _, k := range []string{"POD_NAME", "NATS_HUB_PASSWORD", "NATS_SITE_1_PASSWORD"} {
		t.Setenv(k, "value-for-test")
	}
	opts, err := server.ProcessConfigFile(b.configMaps["nats-config"]["nats.conf"])
	if err != nil {
		t.Fatalf("nats.conf: %v", err)
	}
	if !opts.JetStream || opts.StoreDir == "" {
		t.Error("nats.conf: JetStream is off")
	}
	c := nats.Spec.Template.Spec.Containers[0]
	for name, port := range map[string]int{"client": opts.Port, "cluster": opts.Cluster.Port, "leaf": opts.LeafNode.Port, "monitor": opts.HTTPPort} {
		if cp, ok := portOf(c, intstr.FromString(name)); !ok || int(cp.ContainerPort) != port {
			t.Errorf("nats.conf listens for %s on %d; the pod declares %v", name, port, cp.ContainerPort)
		}
	}
	if len(opts.Routes) != 3 {
		t.Errorf("nats.conf has %d routes, want one per replica", len(opts.Routes))
	}
	for i, r := range opts.Routes {
		want := fmt.Sprintf("nats-%d.%s.%s.svc", i, nats.Spec.ServiceName, b.namespace)
		if r.Hostname() != want || r.Port() != strconv.Itoa(opts.Cluster.Port) {
			t.Errorf("route %s, want %s:%d", r, want, opts.Cluster.Port)
		}
	}
	// Every leaf-only user is a site with exactly the permissions the hub gives its
	// own site users; no leaf connects without one.
	if opts.LeafNode.Username != "" || len(opts.LeafNode.Users) > 0 {
		t.Error("nats.conf: a user in leafnodes { authorization } gets no permissions; sites belong in authorization { users }")
	}
	sites := 0
	for _, u := range opts.Users {
		if _, leafOnly := u.AllowedConnectionTypes["LEAFNODE"]; !leafOnly || len(u.AllowedConnectionTypes) != 1 {
			continue
		}
		sites++
		want := hub.SitePermissions(u.Username)
		if u.Permissions == nil || u.Permissions.Publish == nil || u.Permissions.Subscribe == nil ||
			!slices.Equal(u.Permissions.Publish.Allow, want.Publish.Allow) || !slices.Equal(u.Permissions.Subscribe.Allow, want.Subscribe.Allow) {
			t.Errorf("nats.conf: site user %s has permissions %+v, want hub.SitePermissions: publish %v, subscribe %v",
				u.Username, u.Permissions, want.Publish.Allow, want.Subscribe.Allow)
		}
		if u.Password != "value-for-test" {
			t.Errorf("nats.conf: site user %s does not take its password from the environment", u.Username)
		}
	}
	if sites == 0 {
		t.Error("nats.conf has no site user (a leaf-only user with the site's permissions)")
	}

	// The hub: several replicas behind a PDB and an HPA, cloud.yaml valid and
	// listening where the probes ask.
	hubDep := b.deployment(t, "voltage-cloud")
	if ptrOr(hubDep.Spec.Replicas, 1) < 2 || len(b.pdbs) < 2 || len(b.hpas) < 1 {
		t.Error("the hub needs several replicas, a PDB and an HPA")
	}
	cfgDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(cfgDir, "cloud.yaml"), readFile(t, b.configMaps["voltage-cloud-config"]["cloud.yaml"]), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := hub.Load(cfgDir)
	if err != nil {
		t.Fatalf("k8s/cloud/cloud.yaml: %v", err)
	}
	host, port, _ := net.SplitHostPort(cfg.HTTP.Addr)
	if cp, ok := portOf(hubDep.Spec.Template.Spec.Containers[0], intstr.FromString("http")); host != "0.0.0.0" || !ok || strconv.Itoa(int(cp.ContainerPort)) != port {
		t.Errorf("cloud.yaml http.addr %s, the pod's http port %d", cfg.HTTP.Addr, cp.ContainerPort)
	}
	checkConfigArgs(t, hubDep)

	// The hub is a client of the cluster: nats.url names the client Service, and
	// the cluster takes it without a password (only the hub reaches 4222).
	u, err := url.Parse(cfg.NATS.URL)
	if err != nil || u.Scheme != "nats" {
		t.Fatalf("cloud.yaml nats.url %q: %v", cfg.NATS.URL, err)
	}
	svc := b.service(u.Hostname())
	if svc == nil || !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return strconv.Itoa(int(p.Port)) == u.Port() }) ||
		!labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(nats.Spec.Template.Labels)) {
		t.Errorf("cloud.yaml nats.url %s is not a port of a Service of the NATS pods", cfg.NATS.URL)
	}
	if opts.NoAuthUser != "hub" {
		t.Errorf("nats.conf no_auth_user %q, want hub (the hub connects without a password)", opts.NoAuthUser)
	}
}

// checkConfigArgs: the binary reads --config /etc/voltage, which is mounted.
func checkConfigArgs(t testing.TB, d *appsv1.Deployment) {
	t.Helper()
	c := d.Spec.Template.Spec.Containers[0]
	if !slices.Equal(c.Args, []string{"--config", "/etc/voltage"}) {
		t.Errorf("%s args %v, want --config /etc/voltage", d.Name, c.Args)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/etc/voltage" }) {
		t.Errorf("%s does not mount /etc/voltage", d.Name)
	}
	if !slices.ContainsFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/var/lib/voltage" }) {
		t.Errorf("%s does not mount its working directory /var/lib/voltage (the image's WORKDIR)", d.Name)
	}
}

func TestKubernetesEdge(t *testing.T) {
	b := loadBundle(t, "k8s/edge")
	b.check(t)
	d := b.deployment(t, "voltage-edge")
	if ptrOr(d.Spec.Replicas, 1) != 1 || d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Error("the edge appliance must run once: 1 replica, Recreate")
	}
	checkConfigArgs(t, d)
	// Every embedded service listens on the pod network at a declared port.
	c := d.Spec.Template.Spec.Containers[0]
	env := map[string]string{}
	for _, e := range c.Env {
		env[e.Name] = e.Value
	}
	for name := range service.DefaultAddrs {
		key := service.EnvListenPrefix + strings.ToUpper(name)
		if name == "edge" {
			key = service.EnvHTTPAddr
		}
		host, port, err := net.SplitHostPort(env[key])
		p, _ := strconv.Atoi(port)
		if err != nil || host != "0.0.0.0" || !podHasPort(d.Spec.Template, intstr.FromInt(p)) {
			t.Errorf("edge %s=%q: want 0.0.0.0 and a declared container port", key, env[key])
		}
	}
	if !strings.HasPrefix(env[service.EnvRedisURL], "redis://redis:") || b.service("redis") == nil {
		t.Errorf("edge %s=%q does not name the redis Service", service.EnvRedisURL, env[service.EnvRedisURL])
	}
}

// The checks above find what they are meant to find.
func TestKubernetesChecksCatchMistakes(t *testing.T) {
	for name, doc := range map[string]string{
		"unknown field":  "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {selectr: {a: b}}\n",
		"unknown kind":   "apiVersion: v1\nkind: Pod\nmetadata: {name: x}\n",
		"wrong type":     "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {replicas: three}\n",
		"namespace set":  "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x, namespace: other}\n",
		"no name":        "apiVersion: v1\nkind: ServiceAccount\nmetadata: {}\n",
		"duplicate key":  "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: x}\nmetadata: {name: y}\n",
		"old apiVersion": "apiVersion: autoscaling/v1\nkind: HorizontalPodAutoscaler\nmetadata: {name: x}\n",
	} {
		b := &bundle{configMaps: map[string]map[string]string{}, secrets: map[string]map[string]bool{}, pvcs: map[string]bool{}, accounts: map[string]bool{}, namespaces: map[string]bool{}}
		if err := b.decode([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A Service whose selector matches nothing, a probe on a missing port, a PDB
	// and an HPA aiming at nothing: each is reported.
	dir := t.TempDir()
	for _, f := range []string{"kustomization.yaml", "namespace.yaml", "redis.yaml", "edge.yaml", "policies.yaml", "credentials.env.example", ".gitignore"} {
		if err := os.WriteFile(filepath.Join(dir, f), readFile(t, filepath.Join("k8s/edge", f)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	broken := strings.NewReplacer("port: edge}", "port: nope}", "selector: {app.kubernetes.io/name: redis}", "selector: {app.kubernetes.io/name: rediss}").
		Replace(string(readFile(t, "k8s/edge/edge.yaml")) + "---\n" + string(readFile(t, "k8s/edge/redis.yaml")))
	if err := os.WriteFile(filepath.Join(dir, "edge.yaml"), []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "redis.yaml"), []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: spare}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rec := &recorder{TB: t}
	loadBundle(rec, dir).check(rec)
	for _, want := range []string{"probe port nope", "rediss", "matches no workload"} {
		if !strings.Contains(strings.Join(rec.errors, "\n"), want) {
			t.Errorf("a broken bundle was not reported for %q; errors:\n%s", want, strings.Join(rec.errors, "\n"))
		}
	}
}

// recorder collects the errors a check reports instead of failing the test.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Errorf(format string, args ...any) {
	r.errors = append(r.errors, fmt.Sprintf(format, args...))
}

// kubectl's kustomize builds both bundles (with the example credentials), and
// every object it outputs decodes strictly too.
func TestKubernetesKustomizeBuild(t *testing.T) {
	kubectl := need(t, "kubectl", "kubectl")
	for _, dir := range []string{"k8s/cloud", "k8s/edge"} {
		src := loadBundle(t, dir)
		tmp := t.TempDir()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if err := os.WriteFile(filepath.Join(tmp, e.Name()), readFile(t, filepath.Join(dir, e.Name())), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.WriteFile(filepath.Join(tmp, "credentials.env"), readFile(t, filepath.Join(dir, "credentials.env.example")), 0o600); err != nil {
			t.Fatal(err)
		}
		out := run(t, tmp, nil, kubectl, "kustomize", tmp)
		built := &bundle{dir: dir + " (built)", namespace: src.namespace, namespaceSet: src.namespace, configMaps: map[string]map[string]string{},
			secrets: map[string]map[string]bool{}, pvcs: map[string]bool{}, accounts: map[string]bool{}, namespaces: map[string]bool{}}
		docs := splitYAML([]byte(out))
		for i, doc := range docs {
			if err := built.decode(doc); err != nil {
				t.Errorf("%s: built document %d: %v", dir, i+1, err)
			}
		}
		if len(built.workloads()) != len(src.workloads()) || len(built.services) != len(src.services) || len(built.policies) != len(src.policies) {
			t.Errorf("%s: kustomize output differs in its objects from the sources", dir)
		}
	}
}
