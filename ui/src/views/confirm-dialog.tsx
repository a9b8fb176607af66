import type { ComponentChildren } from 'preact';
import { useEffect, useId, useRef } from 'preact/hooks';

/**
 * A modal confirmation for a state change: the browser's own <dialog> opened with showModal(), so
 * focus is held inside it, Escape closes it (a `cancel`, then `close`), and closing hands focus back
 * to the control that opened it. Cancel has the initial focus: Enter alone never confirms. Rendered
 * while the parent wants it open; every way out ends in `onClose`.
 */
export function ConfirmDialog({ title, confirmLabel, onConfirm, onClose, children }: { title: string; confirmLabel: string; onConfirm: () => void; onClose: () => void; children: ComponentChildren }) {
  const ref = useRef<HTMLDialogElement>(null);
  const id = useId();
  useEffect(() => {
    const dialog = ref.current;
    if (dialog !== null && !dialog.open) {
      dialog.showModal();
    }
    return () => dialog?.close();
  }, []);
  return (
    <dialog ref={ref} class="confirm" aria-labelledby={`${id}-title`} aria-describedby={`${id}-body`} onClose={onClose}>
      <h2 id={`${id}-title`}>{title}</h2>
      <div id={`${id}-body`}>{children}</div>
      <p class="actions">
        <button type="button" autofocus onClick={() => ref.current?.close()}>
          Cancel
        </button>
        <button
          type="button"
          class="primary"
          onClick={() => {
            onConfirm();
            ref.current?.close();
          }}
        >
          {confirmLabel}
        </button>
      </p>
    </dialog>
  );
}
