/**
 * Where the kubelet finds its client certificate and key on the machine: one PEM file holding both,
 * the path kubeadm's kubelet.conf names and the kubelet's certificate rotation keeps current
 * (kubernetes.io docs, "Certificate Management with kubeadm" and "kubelet TLS bootstrapping").
 */
export const KUBELET_CLIENT_PEM_PATH = '/var/lib/kubelet/pki/kubelet-client-current.pem';

export interface KubeletConfInput {
  readonly server: string;
  readonly clusterName: string;
  readonly hostname: string;
  readonly caCertificatePem: string;
}

/**
 * The machine's kubelet.conf: a kubeconfig (apiVersion v1, kind Config) naming the API server, the
 * Kubernetes CA inline (certificate-authority-data: it is public) and the client credential by
 * path, never inline — so the file carries no secret and is stored in the clear beside the
 * certificate; the key reaches the machine only wrapped to its TPM (docs/decisions.md "Secrets and
 * cluster CAs"). Every scalar is a JSON string, which YAML 1.2 reads as the same double-quoted scalar.
 */
export function renderKubeletConf(input: KubeletConfInput): string {
  const q = (text: string): string => JSON.stringify(text);
  const user = `system:node:${input.hostname}`;
  const context = `${user}@${input.clusterName}`;
  const caData = Buffer.from(input.caCertificatePem, 'utf8').toString('base64');
  return [
    'apiVersion: v1',
    'kind: Config',
    'clusters:',
    '- cluster:',
    `    certificate-authority-data: ${q(caData)}`,
    `    server: ${q(input.server)}`,
    `  name: ${q(input.clusterName)}`,
    'contexts:',
    '- context:',
    `    cluster: ${q(input.clusterName)}`,
    `    user: ${q(user)}`,
    `  name: ${q(context)}`,
    `current-context: ${q(context)}`,
    'preferences: {}',
    'users:',
    `- name: ${q(user)}`,
    '  user:',
    `    client-certificate: ${q(KUBELET_CLIENT_PEM_PATH)}`,
    `    client-key: ${q(KUBELET_CLIENT_PEM_PATH)}`,
    '',
  ].join('\n');
}
