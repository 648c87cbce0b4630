{{/* The release's full name, at most 63 characters. */}}
{{- define "purchase-guard.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "purchase-guard.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "purchase-guard.labels" -}}
{{ include "purchase-guard.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "purchase-guard.serviceAccountName" -}}
{{- default (include "purchase-guard.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The webhook Service and the Secret holding the serving certificate. */}}
{{- define "purchase-guard.webhookService" -}}
{{- printf "%s-webhook" (include "purchase-guard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "purchase-guard.certSecret" -}}
{{- printf "%s-webhook-tls" (include "purchase-guard.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The clientConfig of a webhook at path $path; cert-manager injects the caBundle. */}}
{{- define "purchase-guard.clientConfig" -}}
clientConfig:
  service:
    namespace: {{ .root.Release.Namespace }}
    name: {{ include "purchase-guard.webhookService" .root }}
    path: {{ .path }}
    port: 443
{{- end -}}

{{/* Annotations of the webhook configurations. */}}
{{- define "purchase-guard.webhookAnnotations" -}}
{{- if eq .Values.certificates.mode "cert-manager" }}
annotations:
  cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "purchase-guard.certSecret" .) }}
{{- end }}
{{- end -}}

{{/* The subresources judged with a guarded resource, as "<resource>/<subresource>": the
entry's own, else its kind's default (as purchase-guard's Guarded::new: scale for apps/v1
Deployments, ReplicaSets and StatefulSets, resize for Pods). A YAML list. */}}
{{- define "purchase-guard.subresources" -}}
{{- $subresources := list -}}
{{- if hasKey . "subresources" -}}
{{- $subresources = .subresources -}}
{{- else if and (eq .group "apps") (has .resource (list "deployments" "replicasets" "statefulsets")) -}}
{{- $subresources = list "scale" -}}
{{- else if and (eq .group "") (eq .resource "pods") -}}
{{- $subresources = list "resize" -}}
{{- end -}}
{{- $out := list -}}
{{- range $subresources -}}
{{- $out = append $out (printf "%s/%s" $.resource .) -}}
{{- end -}}
{{- toYaml $out -}}
{{- end -}}

{{/* The freeze action of a guarded-resources entry: its own, or its kind's default as
purchase-guard has it (FreezeAction::for_kind); empty when it is never frozen. */}}
{{- define "purchase-guard.freezeAction" -}}
{{- if hasKey . "freeze" -}}
{{- if .freeze }}{{ .freeze.action }}{{ end -}}
{{- else if and (eq .group "apps") (has .resource (list "deployments" "replicasets" "statefulsets")) -}}
scale
{{- else if and (eq .group "batch") (has .resource (list "jobs" "cronjobs")) -}}
suspend
{{- else if and (eq .group "compute.example.com") (eq .resource "virtualmachines") -}}
patch
{{- end -}}
{{- end -}}
