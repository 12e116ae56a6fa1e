{{/* Name of the namespaced objects. */}}
{{- define "portcullis.fullname" -}}
{{- .Values.fullnameOverride | trunc 50 | trimSuffix "-" -}}
{{- end -}}

{{- define "portcullis.selectorLabels" -}}
app.kubernetes.io/name: portcullis
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "portcullis.labels" -}}
{{ include "portcullis.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/part-of: portcullis
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The component label of the pods serving the webhook (and the Service's endpoints). */}}
{{- define "portcullis.servingComponent" -}}
{{- ternary "webhook" "operator" (eq .Values.mode "split") -}}
{{- end -}}

{{/* A selector of every pod that runs serve, whatever the mode (not the bundled PostgreSQL). */}}
{{- define "portcullis.serveSelector" -}}
matchLabels:
  {{- include "portcullis.selectorLabels" . | nindent 2 }}
{{- if eq .Values.mode "split" }}
matchExpressions:
  - key: app.kubernetes.io/component
    operator: In
    values: [webhook, controller, indexer]
{{- else }}
  app.kubernetes.io/component: operator
{{- end }}
{{- end -}}

{{- define "portcullis.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "portcullis.postgresql.fullname" -}}
{{ include "portcullis.fullname" . }}-postgresql
{{- end -}}

{{/* The Secret and key holding the database URL, empty when the embedded store is used. */}}
{{- define "portcullis.databaseSecret" -}}
{{- if .Values.database.existingSecret -}}
{{ .Values.database.existingSecret }}
{{- else if .Values.postgresql.bundled.enabled -}}
{{ include "portcullis.postgresql.fullname" . }}
{{- end -}}
{{- end -}}

{{- define "portcullis.databaseSecretKey" -}}
{{- if .Values.database.existingSecret -}}
{{ .Values.database.existingSecretKey }}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{/* The namespaces the webhook is never sent, as register.ts computes them. */}}
{{- define "portcullis.webhookExcluded" -}}
{{- $ns := concat (list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace) .Values.webhook.excludeNamespaces | uniq -}}
{{- toJson $ns -}}
{{- end -}}

{{/* The webhook's namespaceSelector, identical to src/webhook/register.ts namespaceSelector(). */}}
{{- define "portcullis.webhookNamespaceSelector" -}}
namespaceSelector:
  matchExpressions:
    - key: kubernetes.io/metadata.name
      operator: NotIn
      values: {{ include "portcullis.webhookExcluded" . }}
  {{- with .Values.webhook.namespaceLabel }}
  {{- $kv := splitn "=" 2 . }}
  matchLabels:
    {{ $kv._0 | quote }}: {{ $kv._1 | quote }}
  {{- end }}
{{- end -}}

{{/* The rules, identical to src/webhook/register.ts RULES. */}}
{{- define "portcullis.webhookRules" -}}
rules:
  - apiGroups: [""]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["pods", "pods/ephemeralcontainers", "replicationcontrollers"]
    scope: Namespaced
  - apiGroups: ["apps"]
    apiVersions: ["v1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["deployments", "statefulsets", "daemonsets", "replicasets"]
    scope: Namespaced
  - apiGroups: ["batch"]
    apiVersions: ["v1", "v1beta1"]
    operations: ["CREATE", "UPDATE"]
    resources: ["jobs", "cronjobs"]
    scope: Namespaced
{{- end -}}

{{/* Refusals: configurations the operator must never run with. */}}
{{- define "portcullis.validate" -}}
{{- if and (ne .Values.mode "split") (gt (int .Values.replicas) 1) (not .Values.database.existingSecret) (not .Values.postgresql.bundled.enabled) -}}
{{- fail (printf "replicas is %d but no database is configured: every replica must share one PostgreSQL. Set database.existingSecret (a Secret with the postgres:// URL) or postgresql.bundled.enabled=true (evaluation), or set replicas=1 to use the embedded store." (int .Values.replicas)) -}}
{{- end -}}
{{- if and (eq .Values.mode "split") (not .Values.database.existingSecret) (not .Values.postgresql.bundled.enabled) -}}
{{- fail "mode is split but no database is configured: the webhook, controller and indexer Deployments must share one PostgreSQL. Set database.existingSecret or postgresql.bundled.enabled=true, or use mode: combined." -}}
{{- end -}}
{{- if and .Values.database.existingSecret .Values.postgresql.bundled.enabled -}}
{{- fail "set either database.existingSecret or postgresql.bundled.enabled, not both" -}}
{{- end -}}
{{- end -}}
