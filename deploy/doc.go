// Package deploy holds nsguard's deployment files — the systemd unit, the
// Kubernetes kustomization, the Grafana dashboard and example configs —
// and the tests that keep them honest offline: the rendered manifests are
// decoded strictly against the Kubernetes API types, the unit goes through
// `systemd-analyze verify`, the Dockerfile's build line is run for real and
// every metric a rule or a panel queries is one the daemon exports.
//
// There is no Go API here; the package exists for its tests.
package deploy
