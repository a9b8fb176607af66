import type { ComponentChildren } from 'preact';
import { useEffect, useRef } from 'preact/hooks';

let modals = 0;

/**
 * A modal dialog: the browser's own `<dialog>` opened with showModal(), so the rest of the page is
 * inert (Tab stays in the dialog and the browser's controls), Escape closes it (its `cancel` event),
 * and focus goes to its first field or button and back to what opened it when it closes. Named by its
 * heading (aria-labelledby).
 */
export function Modal({ title, onClose, children }: { title: string; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useRef(`modal-${++modals}`);
  useEffect(() => {
    const dialog = ref.current;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : undefined;
    dialog?.showModal();
    return () => {
      dialog?.close();
      opener?.focus();
    };
  }, []);
  return (
    <dialog
      ref={ref}
      class="modal"
      aria-labelledby={id.current}
      onCancel={(event) => {
        // Escape: the component's owner decides (it unmounts the dialog), not the browser alone.
        event.preventDefault();
        onClose();
      }}
    >
      <h2 id={id.current}>{title}</h2>
      {children}
    </dialog>
  );
}

/** A question before a state change: the action's words on the button, Cancel (and Escape) doing nothing. */
export function ConfirmDialog({
  title,
  confirmLabel,
  onConfirm,
  onClose,
  busy,
  error,
  children,
}: {
  title: string;
  confirmLabel: string;
  onConfirm: () => void;
  onClose: () => void;
  /** While the action runs: the confirm button is disabled (the owner unmounts the dialog when done). */
  busy?: boolean;
  /** Why the action was refused, shown in the dialog. */
  error?: string;
  children: ComponentChildren;
}) {
  return (
    <Modal title={title} onClose={onClose}>
      {children}
      {error !== undefined && (
        <p role="alert" class="error">
          {error}
        </p>
      )}
      <p class="actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" class="primary" disabled={busy === true} onClick={onConfirm}>
          {confirmLabel}
        </button>
      </p>
    </Modal>
  );
}
