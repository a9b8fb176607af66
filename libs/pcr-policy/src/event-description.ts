import type { TcgPcrEvent } from '@rackseal/tpm2';
import { shownText } from './text';

/**
 * What an operator recognises an event by, from the data libs/tpm2 decoded: the image path of an
 * EV_EFI_BOOT_SERVICES_APPLICATION, the variable name of an EV_EFI_VARIABLE_*, the string of an
 * EV_EFI_ACTION or EV_IPL. Only a hint: for most events the digest does not cover this data (an image
 * digest is its Authenticode hash, PFP §10.2.3), so it is what the firmware wrote, not what was measured.
 */
export function eventDescription(event: TcgPcrEvent): string | undefined {
  const data = event.data;
  switch (data.kind) {
    case 'uefi-image-load':
      return shownText(data.image.filePath);
    case 'uefi-variable':
      return shownText(data.variable.unicodeName);
    case 'text':
      return shownText(data.text);
    case 'separator':
      return data.error ? 'separator error value' : undefined;
    default:
      return undefined;
  }
}
