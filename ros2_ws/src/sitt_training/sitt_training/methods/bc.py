"""``bc``: the teacher trains alone; the student regresses the teacher's actions on the
paired observations of the teacher's roll-outs (METHODS.md section 4).

The student uses the same networks as SITT's: its encoder feeds the shared decoder, which is
applied frozen, so BC moves E_S only. The loss is KL(pi_T || pi_S): cross-entropy to the
teacher's action distribution (discrete), or the shared-covariance Gaussian KL, a scaled
squared error of the means (continuous). Labels come from the current teacher."""

from __future__ import annotations

import torch

from ..buffers import PairedBuffer
from .base import Method, paired_batches


class BC(Method):
    name = "bc"

    def update_student(self, buffer: PairedBuffer, generator: torch.Generator
                       ) -> dict[str, float]:
        if len(buffer) == 0 or self.cfg.align_iterations == 0:
            return {}
        p = self.policy
        total = 0.0
        for obs_t, obs_s, w in paired_batches(buffer, self.cfg, generator):
            with torch.no_grad():
                teacher_out = p.teacher_out(obs_t)
            student_out = p.decoder.frozen(p.student_encoder(obs_s))
            loss = (p.decoder.kl(teacher_out, student_out, frozen=True) * w).sum()
            self.student_optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.student_optimizer.step()
            total += loss.item()
        return {"student/bc_loss": total / self.cfg.align_iterations}
