{{- /*
One Deployment of serve. mode: combined renders one (every role, today's layout); mode: split one per role
(webhook, controller, indexer), each with its own ServiceAccount and RBAC (rbac.yaml). Arguments: root (the
chart's context), name, component, roles (empty: every role), replicas, serviceAccount, resources.
*/ -}}
{{- define "portcullis.deployment" -}}
{{- $root := .root }}
{{- $db := include "portcullis.databaseSecret" $root }}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .name }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "portcullis.labels" $root | nindent 4 }}
    app.kubernetes.io/component: {{ .component }}
spec:
  replicas: {{ .replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "portcullis.selectorLabels" $root | nindent 6 }}
      app.kubernetes.io/component: {{ .component }}
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxUnavailable: 0
      maxSurge: 1
  template:
    metadata:
      labels:
        {{- include "portcullis.selectorLabels" $root | nindent 8 }}
        app.kubernetes.io/component: {{ .component }}
        {{- with $root.Values.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        # A change of the configuration rolls the pods.
        checksum/config: {{ include (print $root.Template.BasePath "/configmap.yaml") $root | sha256sum }}
        {{- with $root.Values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ .serviceAccount }}
      automountServiceAccountToken: true
      {{- with $root.Values.priorityClassName }}
      priorityClassName: {{ . }}
      {{- end }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- range . }}
        - name: {{ . }}
        {{- end }}
      {{- end }}
      securityContext:
        runAsNonRoot: true
        runAsUser: 10001
        runAsGroup: 10001
        fsGroup: 10001
        seccompProfile:
          type: RuntimeDefault
      # SIGTERM finishes the scans in flight, then releases the Lease.
      terminationGracePeriodSeconds: 60
      containers:
        - name: portcullis
          image: {{ include "portcullis.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command: ["node", "/app/dist/cli/bin.js", "serve"]
          args:
            - --config=/etc/portcullis/config.yaml
            {{- with .roles }}
            - --roles={{ . }}
            {{- end }}
            - --health-addr=0.0.0.0:8081
            - --webhook-addr=0.0.0.0:8443
            - --webhook-service={{ include "portcullis.fullname" $root }}
            - --leader-elect={{ $root.Values.leaderElection.enabled }}
            - --lease-duration={{ $root.Values.leaderElection.leaseDuration }}
            - --concurrency={{ $root.Values.operator.concurrency }}
            - --index-workers={{ $root.Values.operator.indexWorkers }}
            - --worker-memory={{ $root.Values.operator.workerMemoryMi }}
            - --worker-heap={{ $root.Values.operator.workerHeapMi }}
            - --worker-nice={{ $root.Values.operator.workerNice }}
            - --scan-timeout={{ $root.Values.operator.scanTimeout }}
            - --scan-attempts={{ $root.Values.operator.scanAttempts }}
            - --max-layer-mib={{ $root.Values.operator.maxLayerMib }}
            - --max-captured-mib={{ $root.Values.operator.maxCapturedMib }}
            - --max-scan-captured-mib={{ $root.Values.operator.maxScanCapturedMib }}
            - --platform={{ $root.Values.operator.platform }}
            - --exclude-namespaces={{ join "," $root.Values.operator.excludeNamespaces }}
            - --gc-after={{ $root.Values.operator.gcAfter }}
            {{- with $root.Values.operator.credentialHelpers }}
            - --credential-helpers={{ join "," . }}
            {{- end }}
            {{- with $root.Values.operator.pullSecrets }}
            - --pull-secrets={{ join "," . }}
            {{- end }}
            {{- with $root.Values.operator.credentialScope.namespaces }}
            - --operator-credentials-namespaces={{ join "," . }}
            {{- end }}
            {{- with $root.Values.operator.credentialScope.registries }}
            - --operator-credentials-registries={{ join "," . }}
            {{- end }}
            {{- if not $root.Values.operator.watchPods }}
            - --no-pods
            {{- end }}
            - --webhook={{ $root.Values.webhook.enabled }}
            {{- if $root.Values.webhook.enabled }}
            - --failure-policy={{ $root.Values.webhook.failurePolicy }}
            - --webhook-timeout={{ $root.Values.webhook.timeoutSeconds }}
            - --on-missing-scan={{ $root.Values.webhook.onMissingScan }}
            - --pin-digests={{ $root.Values.webhook.pinDigests }}
            - --tls-mode={{ ternary "external" "builtin" (eq $root.Values.tls.mode "certManager") }}
            {{- with $root.Values.webhook.namespaceLabel }}
            - --webhook-namespace-label={{ . }}
            {{- end }}
            {{- with $root.Values.webhook.excludeNamespaces }}
            - --webhook-exclude-namespaces={{ join "," . }}
            {{- end }}
            - --break-glass={{ $root.Values.webhook.breakGlass }}
            - --webhook-scan-rate={{ $root.Values.webhook.scanRate }}
            - --webhook-scan-burst={{ $root.Values.webhook.scanBurst }}
            {{- if $root.Values.webhook.clientCA.secretName }}
            - --webhook-client-ca=/var/run/portcullis/webhook-client-ca/{{ $root.Values.webhook.clientCA.key }}
            {{- end }}
            {{- end }}
            - --report-tls={{ $root.Values.reportApi.tls }}
            {{- if $root.Values.reportApi.tls }}
            - --report-addr=0.0.0.0:8444
            {{- end }}
            {{- if not $db }}
            - --store-path={{ $root.Values.embeddedStore.path }}
            {{- end }}
          env:
            - name: POD_NAMESPACE
              valueFrom:
                fieldRef:
                  fieldPath: metadata.namespace
            - name: POD_NAME
              valueFrom:
                fieldRef:
                  fieldPath: metadata.name
            {{- if $db }}
            - name: PORTCULLIS_DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $db }}
                  key: {{ include "portcullis.databaseSecretKey" $root }}
            {{- end }}
            {{- with $root.Values.operator.extraEnv }}
            {{- toYaml . | nindent 12 }}
            {{- end }}
          ports:
            - name: webhook
              containerPort: 8443
              protocol: TCP
            - name: http
              containerPort: 8081
              protocol: TCP
            {{- if $root.Values.reportApi.tls }}
            - name: report
              containerPort: 8444
              protocol: TCP
            {{- end }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            initialDelaySeconds: 5
            periodSeconds: 10
            failureThreshold: 3
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            failureThreshold: 3
          resources:
            {{- toYaml .resources | nindent 12 }}
          securityContext:
            runAsNonRoot: true
            runAsUser: 10001
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: ["ALL"]
            seccompProfile:
              type: RuntimeDefault
          volumeMounts:
            - name: tmp
              mountPath: /tmp
            - name: config
              mountPath: /etc/portcullis
              readOnly: true
            {{- if not $db }}
            - name: store
              mountPath: {{ $root.Values.embeddedStore.path }}
            {{- end }}
            {{- if and $root.Values.webhook.enabled $root.Values.webhook.clientCA.secretName }}
            - name: webhook-client-ca
              mountPath: /var/run/portcullis/webhook-client-ca
              readOnly: true
            {{- end }}
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $root.Values.tmpSizeLimit }}
        - name: config
          configMap:
            name: {{ include "portcullis.fullname" $root }}-config
        {{- if not $db }}
        - name: store
          emptyDir: {}
        {{- end }}
        {{- if and $root.Values.webhook.enabled $root.Values.webhook.clientCA.secretName }}
        # The Secret's updates reach the file; the operator re-reads it (no restart).
        - name: webhook-client-ca
          secret:
            secretName: {{ $root.Values.webhook.clientCA.secretName }}
            items:
              - key: {{ $root.Values.webhook.clientCA.key }}
                path: {{ $root.Values.webhook.clientCA.key }}
        {{- end }}
      {{- if $root.Values.topologySpread.enabled }}
      topologySpreadConstraints:
        - maxSkew: 1
          topologyKey: kubernetes.io/hostname
          whenUnsatisfiable: {{ $root.Values.topologySpread.whenUnsatisfiable }}
          labelSelector:
            matchLabels:
              {{- include "portcullis.selectorLabels" $root | nindent 14 }}
              app.kubernetes.io/component: {{ .component }}
        - maxSkew: 1
          topologyKey: topology.kubernetes.io/zone
          whenUnsatisfiable: ScheduleAnyway
          labelSelector:
            matchLabels:
              {{- include "portcullis.selectorLabels" $root | nindent 14 }}
              app.kubernetes.io/component: {{ .component }}
      {{- end }}
      {{- with $root.Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $root.Values.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}
